"""On stage: what every page adds for a talk (called from ``frame.page.start_page`` and ``frame.widgets.header``).

- presenter mode folds the sidebar away (Streamlit's › control brings it back) and draws a
  compact header: the title with a share button beside it, the explanations in one folded
  expander (the CSS is in :mod:`explainer.ui.frame.style`);
- “Share with the room” in the sidebar (:mod:`explainer.ui.stage.share`);
- the tour's keys (:mod:`explainer.ui.stage.keys`) and, after a dropped connection, one rerun that
  rebuilds the view from the URL (:mod:`explainer.ui.stage.reconnect`), both in :mod:`explainer.ui.stage.browser`;
- the URL always carries the whole view: a page switch clears Streamlit's query parameters, so
  every value this session holds is written back on every run. When the connection drops and
  returns, or the server lost the session, the browser's URL alone rebuilds the same view;
- short links that could not be read get a notice in the page's language.
"""
from __future__ import annotations

from typing import Mapping

import streamlit as st

from explainer.text import texts
from explainer.ui.frame import run, state
from explainer.ui.stage import browser, links
from explainer.ui.stage.share import share_button


def on_stage(lang: str, presenter: bool) -> None:
    """The stage frame of a page: notices, a complete URL, sidebar state, share button, keys."""
    common = texts("common", lang)
    for _, value, reason in state.bad_short_links():
        message = common.get("stage.ref_" + reason, common["stage.ref_damaged"])
        run.notice(message.format(value=links.shown(value)))
    complete_url()
    st.set_page_config(initial_sidebar_state="collapsed" if presenter else "auto")
    share_button(common, key="share_room", where=st.sidebar)
    if state.get("tour") >= 0:
        st.sidebar.caption(common["stage.keys_hint"])
    with st.sidebar.container(key="stage_hidden"):     # browser code only: hidden, takes no space
        browser.mount()


def complete_url() -> None:
    """Write every value this session holds back to the URL (only those that differ from the default)."""
    state.write_url()


def presenter_header(t: Mapping[str, str]) -> None:
    """Presenter mode's page header: a compact title, a share button, explanations folded."""
    common = texts("common", state.get("lang"))
    title, share = st.columns([8, 1], vertical_alignment="center")
    title.title(t["title"])
    share_button(common, key="share_room_main", where=share, short=True)
    for message in run.pop_notices():
        st.warning(message)
    parts = [t["intro"]]
    if "notice" in t:
        parts.append(f"**{t.get('notice_label') or common['notice_label']}**\n\n{t['notice']}")
    with st.expander(common["stage.explain_label"], expanded=False):
        st.markdown("\n\n".join(parts))
