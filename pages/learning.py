import streamlit as st
st.title("learning")
st.write("coming soon")
