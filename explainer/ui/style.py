"""Page-level CSS: token chips, and presenter mode's large, high-contrast type."""
from __future__ import annotations

import streamlit as st

_BASE = """
<style>
.tok-row {line-height: 2.2; display: flex; flex-wrap: wrap; font-family: ui-monospace, Menlo, Consolas, monospace;}
.tok {display: inline-block; border-radius: 4px; padding: 0 4px; margin: 2px; white-space: pre; border: 1px solid #0002; line-height: 1.9;}
.tok sub {font-size: 0.65em; color: #333; margin-left: 2px;}
</style>
"""

_PRESENTER = """
<style>
html, body, [data-testid="stAppViewContainer"] {font-size: 22px; color: #000;}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {font-size: 1.25rem;}
h1 {font-size: 3rem !important;} h2 {font-size: 2.3rem !important;} h3 {font-size: 1.9rem !important;}
[data-testid="stCaptionContainer"] {display: none;}
[data-testid="stAppViewContainer"] {background: #ffffff;}
.tok-row {font-size: 1.6rem;}
</style>
"""


def inject_style(presenter: bool) -> None:
    st.html(_BASE + (_PRESENTER if presenter else ""))
