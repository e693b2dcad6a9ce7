"""LLM Explainer: the Streamlit entry point (page config and navigation).

Each page draws the shared frame itself (sidebar, URL state, style) through
``explainer.ui.frame.page.start_page``, so a page also works when run on its own.
"""
from __future__ import annotations

import streamlit as st

from explainer.text import texts
from explainer.ui.frame import state

# (file, url path, icon); titles come from the text files so they follow the language.
PAGES = [
    ("pages/overview.py", "overview", "🗺️"),
    ("pages/tokens.py", "tokens", "🔤"),
    ("pages/embeddings.py", "embeddings", "📍"),
    ("pages/position.py", "position", "🧭"),
    ("pages/attention.py", "attention", "👀"),
    ("pages/mlp.py", "mlp", "🧠"),
    ("pages/layers.py", "layers", "🥞"),
    ("pages/next_token.py", "next_token", "🎲"),
    ("pages/generation.py", "generation", "✍️"),
    ("pages/why.py", "why", "🔎"),
    ("pages/learning.py", "learning", "🌱"),
]

st.set_page_config(page_title="LLM Explainer", page_icon="🔍", layout="wide")
state.load_query_params()                         # so the navigation speaks the link's language
common = texts("common", state.get("lang"))
# The first page is the default one and lives at "/" (its url path is not used).
pages = [st.Page(path, title=common["page_" + slug], icon=icon, url_path=slug) for path, slug, icon in PAGES]
st.navigation(pages).run()
