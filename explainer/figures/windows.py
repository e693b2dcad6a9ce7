"""Local and global layers on the Attention page: a strip of every layer and one layer's whole mask
(the sentences about them are :mod:`explainer.words.attention`'s).

Builders are ``build(result, view)``; every shown string comes from ``view.t`` (the keys each
builder reads are listed in its docstring). The HTML holds numbers and this page's texts only.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explainer.analysis.windows import LATER, OLDER, READS, LayerWindows, MaskShape
from explainer.figures import theme
from explainer.figures.attention import MASK_GREY, WINDOW_SAND
from explainer.view import View

LOCAL_FILL, GLOBAL_FILL = "#dbe8f5", "#fde2c4"


def layer_strip_html(lw: LayerWindows, view: View, layer: int | None = None) -> str:
    """One small box per layer, local (reads a window) or global (reads everything), ``layer`` (the
    page's) outlined; a legend after. HTML from numbers and this page's texts only (no user text).

    Reads strip_local ({layer}, {window}), strip_global ({layer}), strip_legend_local ({window}),
    strip_legend_global.
    """
    labels, big = view.t, view.presenter
    size = "1.1rem" if big else "0.8rem"
    boxes = []
    for box, window in enumerate(lw.windows):
        local = window is not None
        title = (labels["strip_local"] if local else labels["strip_global"]).format(layer=box, window=window)
        border = f"2px solid {theme.ACCENT}" if box == layer else "1px solid #0003"
        boxes.append(f'<span title="{title}" style="display:inline-block;min-width:2.1em;text-align:center;'
                     f'margin:1px;padding:1px 3px;border-radius:4px;border:{border};font-size:{size};'
                     f'font-weight:{400 if local else 700};background:{LOCAL_FILL if local else GLOBAL_FILL}">'
                     f'{box}</span>')
    legend = (f'<span style="margin-left:0.8em;font-size:{size}">'
              f'<span style="background:{LOCAL_FILL};padding:0 0.5em;border-radius:3px">&nbsp;</span> '
              f'{labels["strip_legend_local"].format(window=lw.window)} &nbsp; '
              f'<span style="background:{GLOBAL_FILL};padding:0 0.5em;border-radius:3px">&nbsp;</span> '
              f'{labels["strip_legend_global"]}</span>')
    return f'<div style="display:flex;flex-wrap:wrap;align-items:center">{"".join(boxes)}{legend}</div>'


def mask_shape_figure(m: MaskShape, view: View) -> go.Figure:
    """The whole mask of one layer over ``m.span`` positions: read, later (causal) or older than the
    window; the prompt's own extent outlined. Reads mask_title ({layer}, {span}), mask_reads,
    mask_later, mask_older ({window}), mask_your_text ({n}), hover_mask, axis_query_pos, axis_key_pos.
    One heatmap per kind of cell (its name in its own hover), so no cell carries a string.
    """
    labels, presenter = view.t, view.presenter
    names = {READS: labels["mask_reads"], LATER: labels["mask_later"],
             OLDER: labels["mask_older"].format(window=m.window)}
    centre = np.arange(m.n_cells) * m.step
    kinds = [READS, LATER] + ([OLDER] if m.window is not None else [])
    colours = {READS: "#6baed6", LATER: MASK_GREY, OLDER: WINDOW_SAND}
    cells = np.asarray(m.cells)
    data = [dict(type="heatmap", z=np.where(cells == k, 1.0, np.nan), x=centre, y=centre, zmin=0, zmax=1,
                 colorscale=[[0, colours[k]], [1, colours[k]]], showscale=False, name=names[k], showlegend=True,
                 hovertemplate=labels["hover_mask"].replace("%{customdata}", names[k]) + "<extra></extra>")
            for k in kinds]
    edge = min(m.n_tokens, m.span) - 0.5
    layout = dict(
        title=dict(text=labels["mask_title"].format(layer=m.layer, span=f"{m.span:,}")),
        xaxis=dict(title=dict(text=labels["axis_key_pos"]), showgrid=False, zeroline=False),
        yaxis=dict(title=dict(text=labels["axis_query_pos"]), autorange="reversed", showgrid=False, zeroline=False),
        shapes=[dict(type="rect", x0=-0.5, x1=edge, y0=-0.5, y1=edge, line=dict(color=theme.ACCENT, width=2))],
        annotations=[dict(x=edge, y=edge, text=labels["mask_your_text"].format(n=m.n_tokens), showarrow=False,
                          xanchor="left", yanchor="top", font=dict(color=theme.ACCENT))],
        legend=dict(orientation="h", y=-0.18, x=0))
    for k in kinds:                                    # legend swatches: a heatmap has none of its own
        data.append(dict(type="scatter", x=[None], y=[None], mode="markers", name=names[k], showlegend=True,
                         marker=dict(size=14, symbol="square", color=colours[k]), hoverinfo="skip"))
    for trace in data[:len(kinds)]:
        trace["showlegend"] = False
    return theme.figure(data, layout, presenter, height=460)


