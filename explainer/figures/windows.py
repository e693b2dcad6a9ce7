"""Local and global layers on the Attention page: a strip of every layer, one layer's whole mask,
and the words about them.

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


def layer_strip_html(lw: LayerWindows, view: View) -> str:
    """One small box per layer, local (reads a window) or global (reads everything), the chosen one
    outlined; a legend after. HTML from numbers and this page's texts only (no user text).

    Reads strip_local ({layer}, {window}), strip_global ({layer}), strip_legend_local ({window}),
    strip_legend_global.
    """
    labels, big = view.t, view.presenter
    size = "1.1rem" if big else "0.8rem"
    boxes = []
    for layer, window in enumerate(lw.windows):
        local = window is not None
        title = (labels["strip_local"] if local else labels["strip_global"]).format(layer=layer, window=window)
        border = f"2px solid {theme.ACCENT}" if layer == lw.chosen else "1px solid #0003"
        boxes.append(f'<span title="{title}" style="display:inline-block;min-width:2.1em;text-align:center;'
                     f'margin:1px;padding:1px 3px;border-radius:4px;border:{border};font-size:{size};'
                     f'font-weight:{400 if local else 700};background:{LOCAL_FILL if local else GLOBAL_FILL}">'
                     f'{layer}</span>')
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
    """
    labels, presenter = view.t, view.presenter
    names = {READS: labels["mask_reads"], LATER: labels["mask_later"],
             OLDER: labels["mask_older"].format(window=m.window)}
    centre = (np.arange(m.n_cells) * m.step).tolist()
    kinds = [READS, LATER] + ([OLDER] if m.window is not None else [])
    colours = {READS: "#6baed6", LATER: MASK_GREY, OLDER: WINDOW_SAND}
    top = max(kinds)                                    # kinds are 0..top: one colour band each
    scale = [[edge / (top + 1), colours[k]] for k in kinds for edge in (k, k + 1)]
    fig = go.Figure(go.Heatmap(
        z=m.cells.tolist(), x=centre, y=centre, zmin=-0.5, zmax=top + 0.5, colorscale=scale,
        customdata=[[names[int(c)] for c in row] for row in m.cells],
        colorbar=dict(tickvals=kinds, ticktext=[names[k] for k in kinds], thickness=14, len=0.8),
        hovertemplate=labels["hover_mask"] + "<extra></extra>"))
    edge = min(m.n_tokens, m.span) - 0.5
    fig.add_shape(type="rect", x0=-0.5, x1=edge, y0=-0.5, y1=edge, line=dict(color=theme.ACCENT, width=2))
    fig.add_annotation(x=edge, y=edge, text=labels["mask_your_text"].format(n=m.n_tokens), showarrow=False,
                       xanchor="left", yanchor="top", font=dict(color=theme.ACCENT))
    fig.update_layout(title=labels["mask_title"].format(layer=m.layer, span=f"{m.span:,}"),
                      xaxis_title=labels["axis_key_pos"], yaxis_title=labels["axis_query_pos"])
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(autorange="reversed", showgrid=False, zeroline=False)
    return theme.apply(fig, presenter, height=420)


def layer_note(lw: LayerWindows, view: View) -> str:
    """Markdown: is the chosen layer local or global, and which layers are which.
    Reads layer_local / layer_global ({layer}, {window}, {before}, {n}, {local}, {globals}), list_sep."""
    t, layer = view.t, lw.chosen or 0
    window = lw.windows[layer] or lw.window
    return t["layer_local" if lw.is_local(layer) else "layer_global"].format(
        layer=layer, window=window, before=window - 1, n=lw.n_layers, local=len(lw.local),
        globals=t["list_sep"].join(map(str, lw.global_layers)))


def mask_story(lw: LayerWindows, view: View) -> str:
    """Markdown under a layer's whole mask: why local and global layers, and what the window does to
    this prompt. Reads why_local ({window}, {globals_sentence}), globals_every ({period}), globals_some,
    short_text / long_text ({n}, {window}), sentence_sep (" " in English, nothing in Chinese)."""
    t, window = view.t, lw.window
    cut = any(lw.cuts(layer) for layer in lw.local)
    globals_sentence = t["globals_every"].format(period=lw.period) if lw.period else t["globals_some"]
    return t["why_local"].format(window=window, globals_sentence=globals_sentence) + t["sentence_sep"] + t[
        "long_text" if cut else "short_text"].format(n=lw.n_tokens, window=window)
