"""Widgets bound to URL state, page headers, and charts with their downloads."""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

import plotly.graph_objects as go
import streamlit as st

from explainer.figures import theme
from explainer.text import texts
from explainer.ui import state
from explainer.ui.projector import readable
from explainer.ui.stage import presenter_header


def _bind(name: str, value: Any) -> str:
    """Key ``w_<name>`` for a widget showing ``value``.

    A live widget keeps what the user set; the stored value is pushed into it only when
    the widget is new on this page, on a page switch, or when :func:`state.push` asked for it
    (tour, examples).
    """
    ss = st.session_state
    key, page = "w_" + name, ss.get("_page_now")
    # Re-seed on a page switch too: a widget drawn by another page must not carry its state over.
    if key not in ss or ss.pop("_push_" + name, False) or ss.get("_bound_" + name) != page:
        ss[key] = value
    ss["_bound_" + name] = page
    return key


def _current(name: str) -> Any:
    """The value a widget will show: its live state on this page, else the stored value."""
    ss = st.session_state
    if ss.get("_bound_" + name) == ss.get("_page_now") and "w_" + name in ss:
        return ss["w_" + name]
    return state.get(name)


def int_slider(name: str, label: str, lo: int, hi: int, help: str | None = None,
               stale: str | None = None) -> int:
    """A slider over [lo, hi] remembered across pages; out-of-range values are clamped (with a notice)."""
    value = _current(name)
    if hi <= lo:
        state.put(name, lo)
        return lo
    if not lo <= value <= hi:
        if stale and value != state.PARAMS[name].default:
            st.info(stale.format(name=name, value=value, lo=lo, hi=hi))
        value = min(max(value, lo), hi)
        state.push(name, value)
    chosen = st.slider(label, lo, hi, key=_bind(name, value), help=help)
    state.put(name, chosen)
    return chosen


def float_slider(name: str, label: str, lo: float, hi: float, step: float, help: str | None = None) -> float:
    value = float(_current(name))
    if not lo <= value <= hi:
        value = min(max(value, lo), hi)
        state.push(name, value)
    chosen = st.slider(label, lo, hi, step=step, key=_bind(name, value), help=help)
    state.put(name, chosen)
    return chosen


def choose(name: str, label: str, options: Sequence[Any], format_func: Callable[[Any], str] = str,
           horizontal: bool = False, radio: bool = False) -> Any:
    """A select box (or radio) over ``options``; a stale stored value falls back to the first."""
    value = _current(name)
    if value not in options:
        value = options[0]
        state.push(name, value)
    widget = st.radio if radio else st.selectbox
    extra = {"horizontal": horizontal} if radio else {}
    chosen = widget(label, options, key=_bind(name, value), format_func=format_func, **extra)
    state.put(name, chosen)
    return chosen


def token_picker(name: str, label: str, tokens: Sequence[str], stale: str | None = None) -> int:
    """Pick a position in the prompt (default: the last token). Returns a 0-based index."""
    n = len(tokens)
    value = state.get(name)
    if value >= n:                                   # a stale value (shorter text, old link)
        if stale:
            st.info(stale.format(name=name, value=value, lo=0, hi=n - 1))
        state.push(name, -1)
    if value < 0 or value >= n:                      # -1 means "the last token"
        value = n - 1
    options = list(range(n))
    chosen = st.selectbox(label, options, key=_bind(name, value),
                          format_func=lambda i: f"{i}: {tokens[i]!r}")
    state.put(name, chosen if chosen != n - 1 else -1)
    return chosen


def header(t: Mapping[str, str], presenter: bool = False) -> None:
    """Title, the plain-language explanation, and the 'what to notice' note of a page."""
    if presenter:                                 # compact, explanations folded (explainer.ui.stage)
        return presenter_header(t)
    st.title(t["title"])
    for message in state.pop_notices():
        st.warning(message)
    if not presenter:
        st.markdown(t["intro"])
    if "notice" in t:
        label = t.get("notice_label") or texts("common", state.get("lang"))["notice_label"]
        with st.expander(label, expanded=presenter):
            st.markdown(t["notice"])


def figure(fig: go.Figure, key: str, data: Any = None, file_stem: str | None = None,
           labels: Mapping[str, str] | None = None) -> None:
    """Show a chart (PNG/SVG from its toolbar, fully offline) and offer its data as CSV or JSON."""
    config = theme.PLOTLY_CONFIG_SVG if state.get("img") == "svg" else theme.PLOTLY_CONFIG
    if state.get("presenter"):
        readable(fig)                             # no chart text under 18 px on a projector (explainer.ui.projector)
    st.plotly_chart(fig, key=key, config=config, width="stretch")
    if data is None:
        return
    labels = labels or {}
    stem = file_stem or key
    if hasattr(data, "to_csv"):
        payload, name, mime = data.to_csv(index=False).encode("utf-8"), f"{stem}.csv", "text/csv"
    else:
        payload, name, mime = json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"), f"{stem}.json", "application/json"
    st.download_button(labels.get("download_data", "⬇ Data") + f" ({name.rsplit('.', 1)[1].upper()})",
                       payload, file_name=name, mime=mime, key=f"dl_{key}")

