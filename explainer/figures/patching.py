"""Activation patching: a layer × position map (layer × head for heads) of how much of the clean
answer each copied activation brings back, and a picked cell's next-token distribution beside the
clean and corrupted runs' (the sentences about them are ``explainer.words.patching``'s).

Builders are ``build(result, view)``: numbers and token labels from the result, words from
``view.t`` (``text/<lang>/patching.toml``). Scores are signed (1 = the clean answer fully back,
0 = no effect, below 0 = pushed further away), drawn with the diverging scale as explicit colours
centred on 0, from −1 to 1 unless a score goes beyond.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from explainer import tokens
from explainer.analysis.patching import PatchedPrediction, PatchingResult
from explainer.figures import theme
from explainer.view import View
from explainer.words.patching import cell_label


def signed_colours() -> list:
    """The theme's diverging scale as an explicit list of (position, colour): what Plotly for Python
    and Plotly.js both read the same way (a scale *name* they read differently)."""
    scale = theme.DIVERGING
    return [list(step) for step in scale] if not isinstance(scale, str) else plotly.colors.get_colorscale(scale)


def columns(result: PatchingResult, numbered: bool = True) -> list[str]:
    """The map's column labels: "3: ␣Tower" (where the prompts differ: "3: ␣Tower → ␣Col"; without
    ``numbered`` no position), or head numbers."""
    if not result.by_position:
        return [str(h) for h in range(result.scores.shape[1])]
    return [(f"{i}: " if numbered else "") + tokens.for_plotly(a) + ("" if a == b else f" → {tokens.for_plotly(b)}")
            for i, (a, b) in enumerate(zip(result.tokens, result.corrupted_tokens))]


def _box(layer: int, index: int, colour: str, width: int, dash: str = "solid") -> dict[str, Any]:
    return dict(type="rect", x0=index - 0.5, x1=index + 0.5, y0=layer - 0.5, y1=layer + 0.5,
                line=dict(color=colour, width=width, dash=dash))


def map_figure(result: PatchingResult, view: View, picked: tuple[int, int] | None = None,
               compact: bool = False) -> go.Figure:
    """The site's map: one cell per patched run, the three strongest outlined, the picked one dotted.
    ``compact`` (a narrow column): the tokens alone, written upwards, on the axis.

    Reads ``map_title`` ({site}, {answer}, {contrast}), ``site_<site>``, ``axis_layer``,
    ``axis_position``, ``axis_head``, ``hover_cell`` ({layer}, {where}, {score}, {diff}).
    """
    t = view.t
    n, width = result.scores.shape
    labels = columns(result, numbered=not compact)
    span = max(1.0, float(np.abs(result.scores).max()))
    hover = t["hover_cell"].format(layer="%{y}", where="%{customdata[0]}", score="%{customdata[1]:.3f}",
                                   diff="%{customdata[2]:.3f}")
    heat = dict(type="heatmap", z=np.round(result.scores, 4).tolist(), x=list(range(width)), y=list(range(n)),
                colorscale=signed_colours(), zmid=0, zmin=-span, zmax=span, colorbar=dict(thickness=10),
                hoverinfo="skip", xgap=1, ygap=1)
    # One transparent marker per cell on top: it carries the hover, and a click on it picks the cell
    # (Streamlit reports clicks on markers, not on heatmap cells).
    cells = [(l, i) for l in range(n) for i in range(width)]
    marks = dict(type="scatter", mode="markers", x=[i for _, i in cells], y=[l for l, _ in cells],
                 customdata=[[labels[i], round(float(result.scores[l, i]), 4), round(float(result.diffs[l, i]), 4)]
                             for l, i in cells],
                 marker=dict(symbol="square", size=12, color="rgba(0,0,0,0)"), hovertemplate=hover + "<extra></extra>",
                 showlegend=False)
    shapes = [_box(l, i, "#000000", 2) for l, i in result.strongest(3)]
    if picked is not None:
        shapes.append(_box(*picked, theme.ACCENT, 3, "dot"))
    title = t["map_title"].format(site=t["site_" + result.site], answer=tokens.for_plotly(result.answer_label),
                                  contrast=tokens.for_plotly(result.contrast_label))
    layout = dict(title=dict(text=title), shapes=shapes, clickmode="event+select", dragmode=False,
                  xaxis=dict(title=dict(text=t["axis_position" if result.by_position else "axis_head"]),
                             tickvals=list(range(width)), ticktext=labels if result.by_position else None,
                             tickangle=(-90 if compact else -45) if result.by_position and width > 6 else 0,
                             range=[-0.5, width - 0.5]),
                  yaxis=dict(title=dict(text=t["axis_layer"]), range=[n - 0.5, -0.5], dtick=1 if n <= 20 else 2))
    return theme.figure([heat, marks], layout, view.presenter, height=max(320, 14 * n + 160))


def prediction_figure(pred: PatchedPrediction, view: View) -> go.Figure:
    """Grouped bars per token: its probability after the clean prompt, the corrupted one, and the
    corrupted one with the picked cell patched (without a cell: the two runs alone, ``pair_title``).
    Reads ``prediction_title`` ({site}, {cell}: the cell's
    label), ``bar_clean``, ``bar_corrupted``, ``bar_patched``, ``axis_prob``."""
    t = view.t
    names = [tokens.for_plotly(label) for label in pred.labels]
    bars = [(t["bar_clean"], pred.clean, theme.MUTED), (t["bar_corrupted"], pred.corrupted, theme.PALETTE[0]),
            (t["bar_patched"], pred.patched, theme.ACCENT)][:3 if pred.patched else 2]
    data = [dict(type="bar", name=name, x=names, y=np.round(values, 5).tolist(), marker=dict(color=colour),
                 hovertemplate="%{x}<br>" + name + ": %{y:.4f}<extra></extra>") for name, values, colour in bars]
    title = t["prediction_title"].format(site=t["site_" + pred.site], cell=cell_label(pred, view)) if pred.site \
        else t["pair_title"]
    layout = dict(barmode="group", title=dict(text=title),
                  yaxis=dict(title=dict(text=t["axis_prob"]), range=[0, 1]), xaxis=dict(tickangle=-30),
                  legend=dict(orientation="h", y=1.0, yanchor="bottom"), margin=dict(t=110))
    return theme.figure(data, layout, view.presenter, height=380)
