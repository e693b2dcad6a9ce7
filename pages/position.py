import streamlit as st
st.title("position")
st.write("coming soon")
