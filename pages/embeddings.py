import streamlit as st
st.title("embeddings")
st.write("coming soon")
