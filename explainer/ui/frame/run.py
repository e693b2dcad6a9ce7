"""This run: the page it draws, that page's View, and notices for its header.

Kept in session state for the length of a run: :func:`explainer.ui.frame.page.start_page` sets
them; widgets read the View (labels, image format) and headers show the notices.
"""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from explainer.ui.frame import state
from explainer.view import View


def set_page(page: str) -> None:
    """Record which page this run draws (widgets re-seed when it changes).

    The page is its slug and the navigation entry that runs it: the default page has two (it
    answers at ``/`` and at ``/<slug>``), and Streamlit gives a widget a fresh state under each.
    """
    ctx = get_script_run_ctx()
    st.session_state["_page_now"] = (page, ctx.page_script_hash if ctx is not None else "")
    st.session_state["_redraw_now"] = st.session_state.pop("_redraw_next", False)


def redraw_for_a_part() -> None:
    """Mark the next run as the page's redraw once a part computed behind it is ready (called just
    before that part's progress line reruns the page).

    That run shows every bound widget from the stored values (:mod:`explainer.ui.frame.binding`),
    not from Streamlit's widget state: a page rerun started from inside a fragment can find the
    widgets outside the fragment reset to their first option (measured in Chromium with the sidebar
    folded in presenter mode: the language back to English, the text emptied, the presenter mode
    off). The user changed nothing in between (the rerun came from the server), so the stored
    values are the ones on screen. Only from a fragment's own run (nothing is marked otherwise): when
    the line is drawn inline in a page run that a user's change started, a widget below it has not
    stored that change yet.
    """
    ctx = get_script_run_ctx()
    if ctx is not None and ctx.fragment_ids_this_run:
        st.session_state["_redraw_next"] = True


def redrawing() -> bool:
    """Whether this run is such a redraw (see :func:`redraw_for_a_part`)."""
    return bool(st.session_state.get("_redraw_now"))


def page() -> tuple[str, str] | None:
    """The page this run draws, (slug, navigation entry); None before any page has started."""
    return st.session_state.get("_page_now")


def set_view(page_view: View) -> None:
    """Keep the page's View for this run (charts read their labels and image format from it)."""
    st.session_state["_view"] = page_view


def view() -> View:
    """The View the current page built (the common texts in the session's language before any page has)."""
    found = st.session_state.get("_view")
    return found if isinstance(found, View) else View.of("common", state.get("lang"))


def notice(message: str) -> None:
    """Queue a message to show at the top of the page (e.g. a bad URL value)."""
    st.session_state.setdefault("_notices", []).append(message)


def pop_notices() -> list[str]:
    return st.session_state.pop("_notices", [])
