"""Widgets bound to the session's values: which key a widget has and what it shows.

A live widget keeps what the user set; the stored value (:mod:`explainer.ui.frame.state`) is
pushed into it only when the widget is new on this page, on a page switch, when its scope
changed (say, the text its options come from), when :func:`~explainer.ui.frame.state.push`
asked for it (tour, examples), or when the page is redrawn for a part computed behind it
(:func:`~explainer.ui.frame.run.redraw_for_a_part`). Tests find widgets by :func:`widget_key`.
"""
from __future__ import annotations

from typing import Any, Hashable

import streamlit as st

from explainer.ui.frame import run, state

_WIDGET, _BOUND, _SCOPE = "w_", "_bound_", "_scope_"


def widget_key(name: str) -> str:
    """The key of the widget bound to ``name`` (see :func:`bind`)."""
    return _WIDGET + name


def bind(name: str, value: Any, scope: Hashable = None) -> str:
    """The key of a widget showing ``value`` for ``name`` (re-seeded as the module docstring says)."""
    ss = st.session_state
    key, page = widget_key(name), run.page()
    # Re-seed on a page switch too: a widget drawn by another page must not carry its state over.
    pushed = ss.pop(state.PUSH + name, False)
    if key not in ss or pushed or run.redrawing() or ss.get(_BOUND + name) != page or ss.get(_SCOPE + name) != scope:
        ss[key] = value
    ss[_BOUND + name], ss[_SCOPE + name] = page, scope
    return key


def current(name: str) -> Any:
    """The value a widget will show: its live state on this page, unless a push waits, else the stored value."""
    ss = st.session_state
    live = ss.get(_BOUND + name) == run.page() and widget_key(name) in ss
    if live and not ss.get(state.PUSH + name) and not run.redrawing():
        return ss[widget_key(name)]
    return state.get(name)


def forget_widget(name: str) -> None:
    """Drop a widget's live state, so that it shows its stored value when next drawn."""
    st.session_state.pop(widget_key(name), None)
