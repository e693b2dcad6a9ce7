"""Widgets bound to URL state, page headers, and charts with their downloads."""
from __future__ import annotations

import json
from typing import Any, Callable, Protocol, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explainer import tokens
from explainer.figures import theme
from explainer.ui.frame import binding, params, run, state
from explainer.ui.stage.talk import presenter_header
from explainer.view import View


class Exportable(Protocol):
    def rows(self) -> list[dict[str, Any]] | dict[str, Any]: ...


def _stale(name: str, value: Any, lo: int, hi: int) -> None:
    """Say that a stored value (an old link, a shorter text) does not exist here."""
    st.info(run.view().common["stale_value"].format(name=name, value=value, lo=lo, hi=hi))


def int_slider(name: str, label: str, lo: int, hi: int, help: str | None = None) -> int:
    """A slider over [lo, hi] remembered across pages; out-of-range values are clamped (with a notice)."""
    value = binding.current(name)
    if hi <= lo:
        state.put(name, lo)
        return lo
    if not lo <= value <= hi:
        if value != params.PARAMS[name].default:
            _stale(name, value, lo, hi)
        value = min(max(value, lo), hi)
        state.push(name, value)
    chosen = st.slider(label, lo, hi, key=binding.bind(name, value), help=help)
    state.put(name, chosen)
    return chosen


def float_slider(name: str, label: str, lo: float, hi: float, step: float, help: str | None = None) -> float:
    value = float(binding.current(name))
    if not lo <= value <= hi:
        value = min(max(value, lo), hi)
        state.push(name, value)
    chosen = st.slider(label, lo, hi, step=step, key=binding.bind(name, value), help=help)
    state.put(name, chosen)
    return chosen


def choose(name: str, label: str, options: Sequence[Any], format_func: Callable[[Any], str] = str,
           horizontal: bool = False, radio: bool = False) -> Any:
    """A select box (or radio) over ``options``; a stale stored value falls back to the first."""
    value = binding.current(name)
    if value not in options:
        value = options[0]
        state.push(name, value)
    widget = st.radio if radio else st.selectbox
    extra = {"horizontal": horizontal} if radio else {}
    chosen = widget(label, options, key=binding.bind(name, value), format_func=format_func, **extra)
    state.put(name, chosen)
    return chosen


def token_picker(name: str, label: str, labels: Sequence[str]) -> int:
    """Pick a position in the prompt (default: the last token). Returns a 0-based index."""
    n = len(labels)
    value = state.get(name)
    if value >= n:                                   # a stale value (shorter text, old link)
        _stale(name, value, 0, n - 1)
        state.push(name, -1)
    if value < 0 or value >= n:                      # -1 means "the last token"
        value = n - 1
    options = list(range(n))
    chosen = st.selectbox(label, options, key=binding.bind(name, value),
                          format_func=lambda i: f"{i}: {tokens.shown(labels[i])}")
    state.put(name, chosen if chosen != n - 1 else -1)
    return chosen


def header(view: View) -> None:
    """Title, the plain-language explanation, and the 'what to notice' note of a page."""
    if view.presenter:                            # compact, explanations folded
        return presenter_header(view.t)
    st.title(view.t["title"])
    for message in run.pop_notices():
        st.warning(message)
    if not view.presenter:
        st.markdown(view.t["intro"])
    if "notice" in view.t:
        with st.expander(view.t.get("notice_label") or view.common["notice_label"], expanded=view.presenter):
            st.markdown(view.t["notice"])


def figure(fig: go.Figure, key: str, result: Exportable | None = None) -> None:
    """Show a chart (PNG/SVG from its toolbar, fully offline) and offer ``result.rows()`` as CSV or JSON.

    Rows that are a list of records download as CSV, a mapping (nested numbers) as JSON; the
    file is written only when the button is pressed. The image format and the button's words
    come from the page's View.
    """
    _chart(fig, key, result, select=False)


def clickable_figure(fig: go.Figure, key: str, result: Exportable | None = None) -> list[Any]:
    """:func:`figure` whose points can be clicked: a click reruns the page and this returns the
    points clicked (plotly's dicts, with ``x`` and ``y``), else []."""
    return _chart(fig, key, result, select=True)


def _chart(fig: go.Figure, key: str, result: Exportable | None, select: bool) -> list[Any]:
    view = run.view()
    config = theme.PLOTLY_CONFIG_SVG if view.image_format == "svg" else theme.PLOTLY_CONFIG
    event = st.plotly_chart(fig, key=key, config=config, width="stretch",
                            **({"on_select": "rerun", "selection_mode": "points"} if select else {}))
    points = list(event.selection.points) if select and event is not None else []
    if result is None:
        return points
    rows = result.rows()
    kind, mime = ("CSV", "text/csv") if isinstance(rows, list) else ("JSON", "application/json")
    st.download_button(f"{view.common['download_data']} ({kind})", lambda: export(rows),
                       file_name=f"{key}.{kind.lower()}", mime=mime, key=f"dl_{key}", on_click="ignore")
    return points


def export(rows: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    """The file a data download holds: CSV for a list of records, JSON for a mapping."""
    if isinstance(rows, list):
        return pd.DataFrame(rows).to_csv(index=False).encode("utf-8")
    return json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8")
