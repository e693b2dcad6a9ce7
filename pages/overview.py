import streamlit as st
st.title("overview")
st.write("coming soon")
