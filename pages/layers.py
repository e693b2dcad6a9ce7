import streamlit as st
st.title("layers")
st.write("coming soon")
