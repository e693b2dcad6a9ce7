"""The only Streamlit glue inside the library, by concern: ``frame`` (values, the URL, the page's
start, sidebar, widgets), ``stage`` (what a page adds for a talk), ``sections`` (the larger parts
of pages) and ``tools`` (the AppTest harness, the server's entry)."""
