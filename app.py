"""LLM Explainer: the Streamlit entry point (page config and navigation).

The pages come from the one page registry (``explainer.registry``); their menu titles from each
page's own text file, so they follow the language. Each page draws the shared frame itself
(sidebar, URL state, style) through ``explainer.ui.frame.page.start_page``, so a page also works
when run on its own.
"""
from __future__ import annotations

import streamlit as st

from explainer.registry import DEFAULT, PAGES
from explainer.text import texts
from explainer.ui.frame import serving, state

st.set_page_config(page_title="LLM Explainer", page_icon="🔍", layout="wide")
state.load_query_params()                         # so the navigation speaks the link's language
lang = state.get("lang")
menu = [st.Page(p.file, title=texts(p.slug, lang)["menu"], icon=p.icon, url_path="" if p is DEFAULT else p.slug,
                default=p is DEFAULT) for p in PAGES]
# The default page opens at "/"; it answers at its own address too (hidden from the menu, which lists it once).
alias = st.Page(DEFAULT.file, title=texts(DEFAULT.slug, lang)["menu"], icon=DEFAULT.icon, url_path=DEFAULT.slug,
                visibility="hidden")
with serving.said_when_unanswered(lang):          # a cluster that cannot answer: said, in the page's language
    st.navigation(menu + [alias]).run()
