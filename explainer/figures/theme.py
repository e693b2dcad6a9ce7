"""One plotly look for every chart: template, colour scales, presenter sizing.

Figure builders call :func:`apply` (or build with :func:`figure`) last, so presenter mode (large
type, high contrast, no chart text under 18 px: :mod:`explainer.figures.projector`) is a property
of the theme, not of each figure, and is applied here only.
"""
from __future__ import annotations

import os
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from explainer.figures.projector import readable

# Colour scales as explicit colours, never by name: Plotly.js and Plotly for Python share scale
# names but not always their direction (Plotly.js's "Blues" runs from dark blue at 0 to light grey
# at 1, Python's the other way), and a figure sent to the browser unchecked is read by Plotly.js.
# Sequential, for probabilities and attention (0 → 1): 0 nearly white, 1 dark blue (ColorBrewer
# Blues). Diverging, centred on 0, for signed values: blue below, white at 0, red above (RdBu).
SEQUENTIAL = [[0.0, "#f7fbff"], [0.125, "#deebf7"], [0.25, "#c6dbef"], [0.375, "#9ecae1"], [0.5, "#6baed6"],
              [0.625, "#4292c6"], [0.75, "#2171b5"], [0.875, "#08519c"], [1.0, "#08306b"]]
DIVERGING = [[0.0, "#053061"], [0.1, "#2166ac"], [0.2, "#4393c3"], [0.3, "#92c5de"], [0.4, "#d1e5f0"],
             [0.5, "#f7f7f7"], [0.6, "#fddbc7"], [0.7, "#f4a582"], [0.8, "#d6604d"], [0.9, "#b2182b"],
             [1.0, "#67001f"]]
ACCENT = "#d62728"        # the one thing to look at (chosen token, highlighted point)
MUTED = "#9aa5b1"         # everything else
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f", "#d62728"]
FONT_FAMILY = "Noto Sans CJK SC, Microsoft YaHei, PingFang SC, Arial, sans-serif"

# Plotly's modebar can save PNG and SVG entirely in the browser (no network needed).
PLOTLY_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
    "modeBarButtonsToAdd": ["toImage"],
}
PLOTLY_CONFIG_SVG = {**PLOTLY_CONFIG, "toImageButtonOptions": {"format": "svg"}}


# Every figure starts from plotly_white. Naming the template per figure would make plotly
# validate and copy the whole template again for each chart (about 8 ms each, several charts
# on every rerun), so it is made the default once and built into each figure at creation.
TEMPLATE = "plotly_white"
pio.templates.default = TEMPLATE


# Plotly checks every property of a figure as it is built, which costs several times the rest of
# building it (a 9-head grid: 22 ms checked, 4.5 ms not) on every move of a slider. The tests set
# LLM_EXPLAINER_VALIDATE_FIGURES=1, so every figure is checked there; the app builds unchecked.
VALIDATE = os.environ.get("LLM_EXPLAINER_VALIDATE_FIGURES", "") == "1"


def _look(presenter: bool, titled: bool) -> dict[str, Any]:
    """The layout every figure shares: font, margins, hover text, colours (presenter: larger, black)."""
    base = 22 if presenter else 13
    return dict(font=dict(family=FONT_FAMILY, size=base, color="#000000" if presenter else "#222222"),
                margin=dict(l=10, r=10, t=50 if titled else 20, b=10),
                hoverlabel=dict(font_size=base + (2 if presenter else 0), font_family=FONT_FAMILY),
                colorway=PALETTE)


def _axis_look(presenter: bool) -> dict[str, Any]:
    base = 22 if presenter else 13
    return dict(tickfont=dict(size=base - 2), title_font=dict(size=base), gridcolor="#bbbbbb")


def figure(data: list[dict[str, Any]], layout: dict[str, Any], presenter: bool = False,
           height: int | None = None) -> go.Figure:
    """Build a figure in one go from plain trace dicts and a layout, with the project look merged in
    (what :func:`apply` does afterwards, without re-checking the figure property by property)."""
    look = _look(presenter, bool(layout.get("title")))
    if pio.templates.default != TEMPLATE:
        look["template"] = TEMPLATE
    if height is not None:
        look["height"] = int(height * (1.3 if presenter else 1.0))
    merged = {**look, **{k: v for k, v in layout.items() if k not in ("margin", "font", "hoverlabel")}}
    for key in ("margin", "font", "hoverlabel"):
        merged[key] = {**look[key], **layout.get(key, {})}
    if presenter:
        for name in dict.fromkeys([k for k in merged if k.startswith(("xaxis", "yaxis"))] + ["xaxis", "yaxis"]):
            merged[name] = {**_axis_look(True), **merged.get(name, {})}
    fig = go.Figure(data=data, layout=merged, _validate=VALIDATE)
    return readable(fig) if presenter else fig


def apply(fig: go.Figure, presenter: bool = False, height: int | None = None) -> go.Figure:
    """Give ``fig`` the project look; presenter mode enlarges type and raises contrast."""
    if pio.templates.default != TEMPLATE:               # someone changed the default since: name it here
        fig.update_layout(template=TEMPLATE)
    fig.update_layout(**_look(presenter, bool(fig.layout.title.text)))
    if height is not None:
        fig.update_layout(height=int(height * (1.3 if presenter else 1.0)))
    if presenter:
        fig.update_xaxes(**_axis_look(True))
        fig.update_yaxes(**_axis_look(True))
        readable(fig)                                   # no chart text under 18 px, axis text black
    return fig
