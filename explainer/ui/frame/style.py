"""Page-level CSS: token chips, and presenter mode for a projector.

Presenter mode (1280 × 720 is the size to design for): large, black-on-white type; Streamlit's
own chrome hidden (toolbar, main menu, deploy button, the "running" status, decoration bar,
footer) except the small › control that brings the folded sidebar back; a compact title and
little padding, so each page's main chart starts on the first screen. Leaving presenter mode
drops this CSS, which restores everything.
"""
from __future__ import annotations

import streamlit as st

_BASE = """
<style>
.tok-row {line-height: 2.2; display: flex; flex-wrap: wrap; font-family: ui-monospace, Menlo, Consolas, monospace;}
.tok {display: inline-block; border-radius: 4px; padding: 0 4px; margin: 2px; white-space: pre; border: 1px solid #0002; line-height: 1.9;}
.tok sub {font-size: 0.65em; color: #333; margin-left: 2px;}
.st-key-stage_hidden {display: none;}
.st-key-share_link code {font-size: 1.15rem; word-break: break-all;}
</style>
"""

_PRESENTER = """
<style>
html, body, [data-testid="stAppViewContainer"] {font-size: 20px; color: #000;}
[data-testid="stAppViewContainer"], [data-testid="stMain"] {background: #ffffff;}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {font-size: 1.15rem; color: #000;}
[data-testid="stMarkdownContainer"] a {color: #0a3a8c; text-decoration: underline;}
[data-testid="stWidgetLabel"] p {font-weight: 600; color: #000;}
[data-testid="stMain"] h1 {font-size: 2.25rem !important; padding: 0.1rem 0 0 0 !important; margin: 0 !important;
  line-height: 1.15 !important;}
[data-testid="stMain"] [data-testid="stHeading"] [data-testid="stMarkdownContainer"] {margin-bottom: 0;}
.st-key-share_room_main button {padding: 0.25rem 0.5rem; min-height: 2.2rem;}
[data-testid="stMain"] h2 {font-size: 1.5rem !important; padding: 0.4rem 0 0.25rem 0 !important; line-height: 1.3 !important;}
[data-testid="stMain"] h3 {font-size: 1.3rem !important; padding: 0.3rem 0 0.25rem 0 !important; line-height: 1.3 !important;}
[data-testid="stCaptionContainer"] {display: none;}
[data-testid="stMain"] [data-testid="stCode"] {display: none;}
.tok-row {font-size: 1.4rem;}
[data-testid="stMetricValue"], [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p {font-size: 1.9rem; line-height: 1.25;}
[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"] p {font-size: 1rem;}
[data-testid="stExpander"] details {border-color: #000;}
[data-testid="stExpander"] summary p {font-size: 1rem;}
[data-testid="stVerticalBlock"] {gap: 0.55rem;}
[data-testid="stMainBlockContainer"] {padding: 0.6rem 1.5rem 3rem 3.5rem; max-width: none;}
/* the tour banner (explainer.ui.stage.tour): narration and its buttons on one row */
[data-testid="stMain"] [data-testid="stVerticalBlock"]:has(> [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"] [class*="st-key-tour_"]) {
  flex-direction: row; align-items: center; padding: 0.45rem 0.9rem; gap: 1rem; border-color: #000;}
[data-testid="stMain"] [data-testid="stVerticalBlock"]:has(> [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"] [class*="st-key-tour_"]) > [data-testid="stElementContainer"] {
  flex: 1 1 0; width: auto !important;}
[data-testid="stMain"] [data-testid="stVerticalBlock"]:has(> [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"] [class*="st-key-tour_"]) > [data-testid="stLayoutWrapper"] {
  flex: 0 0 21rem;}
[data-testid="stMain"] [data-testid="stVerticalBlock"]:has(> [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"] [class*="st-key-tour_"]) p {
  font-size: 1rem;}
[data-testid="stToolbarActions"], [data-testid="stMainMenu"], [data-testid="stStatusWidget"],
[data-testid="stAppDeployButton"], [data-testid="stDecoration"], footer {display: none !important;}
[data-testid="stHeader"] {background: transparent; height: 0; min-height: 0; pointer-events: none;}
[data-testid="stExpandSidebarButton"] {pointer-events: auto; background: #ffffff; border: 1px solid #000;
  border-radius: 6px; position: fixed; top: 0.5rem; left: 0.5rem; z-index: 999991;}
</style>
"""


def inject_style(presenter: bool) -> None:
    st.html(_BASE + (_PRESENTER if presenter else ""))
