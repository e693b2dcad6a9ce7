import streamlit as st
st.title("generation")
st.write("coming soon")
