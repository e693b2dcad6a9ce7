import streamlit as st
st.title("attention")
st.write("coming soon")
