"""Chart text readable from the back of a hall: no text under 18 px, black on white.

The theme already enlarges a presenter figure's type, but a figure can still carry smaller
text: a builder's own sizes (colour-bar ticks, subplot titles, annotations), Plotly's legend,
and the minor labels of a log axis, which Plotly draws at 75 % of the tick size. And
Streamlit's chart theme greys axis text (#808495, a contrast of about 3.8 : 1) unless a figure
sets its colours. This pass is the last step of the theme in presenter mode
(:func:`explainer.figures.theme.apply` and :func:`~explainer.figures.theme.figure`), so every
builder gets it: it raises each size to the floor and makes axis, legend and colour-bar text
black. Presenter styling lives in the theme and nowhere else.
"""
from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

MIN_PX = 18
INK = "#000000"
GRID = "#b0b0b0"
LOG_MINOR_SCALE = 0.75          # Plotly draws a log axis's in-between labels (2, 5, …) this much smaller


def _raise(font: Any, floor: float, ink: bool = True) -> None:
    """Set ``font.size`` to at least ``floor`` (None sizes inherit, so set them) and the colour to black."""
    if font is None:
        return
    if font.size is None or font.size < floor:
        font.size = floor
    if ink:
        font.color = INK


def readable(fig: go.Figure, min_px: int = MIN_PX) -> go.Figure:
    """Raise every axis, legend, colour-bar, title, annotation and hover text of ``fig`` to ``min_px``,
    and make axis, legend and colour-bar text black.

    Changes ``fig`` in place and returns it.
    """
    layout = fig.layout
    _raise(layout.font, min_px)
    _raise(layout.hoverlabel.font, min_px, ink=False)
    _raise(layout.legend.font, min_px)
    _raise(layout.legend.title.font, min_px)
    _raise(layout.title.font, min_px)
    for axis in list(fig.select_xaxes()) + list(fig.select_yaxes()):
        floor = math.ceil(min_px / LOG_MINOR_SCALE) if axis.type == "log" else min_px
        _raise(axis.tickfont, floor)
        _raise(axis.title.font, min_px)
        axis.gridcolor = axis.gridcolor or GRID
        axis.linecolor = axis.linecolor or INK
    for annotation in layout.annotations or ():
        _raise(annotation.font, min_px, ink=annotation.font.color is None)   # keep a builder's accent colour
    for trace in fig.data:
        colorbar = getattr(trace, "colorbar", None)
        if colorbar is not None and _shows_colorbar(trace):
            _raise(colorbar.tickfont, min_px)
            _raise(colorbar.title.font, min_px)
        hover = getattr(trace, "hoverlabel", None)
        if hover is not None and hover.font is not None and hover.font.size is not None:
            _raise(hover.font, min_px, ink=False)
        if getattr(trace, "text", None) is not None and getattr(trace, "textfont", None) is not None:
            _raise(trace.textfont, min_px, ink=False)          # values printed on bars, marks in cells
    for name in {getattr(trace, "coloraxis", None) for trace in fig.data} - {None}:
        _raise(layout[name].colorbar.tickfont, min_px)      # a shared colour axis ("coloraxis", "coloraxis2", …)
    return fig


def _shows_colorbar(trace: Any) -> bool:
    return getattr(trace, "showscale", None) is not False
