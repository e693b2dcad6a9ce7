import streamlit as st
st.title("mlp")
st.write("coming soon")
