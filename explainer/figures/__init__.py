"""Pure figure builders: result object in, plotly Figure out. No model, no Streamlit."""
