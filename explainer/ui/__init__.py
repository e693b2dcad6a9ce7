"""The only Streamlit glue inside the library: state, deep links, cached loaders, widgets."""
