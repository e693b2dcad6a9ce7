"""Attention figures: one head's heatmap, all heads of a layer, arcs, the q·k steps, head statistics.

Builders are ``build(result, view)``; every shown string comes from ``view.t`` (the keys each
builder reads are listed in its docstring). Tokens are shown by the one rule (explainer.tokens).
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from explainer.analysis.attention import STATS, HeadStats, KeySteps, Pattern, Reads
from explainer.figures import theme
from explainer.tokens import plotly_axis
from explainer.view import View

# Masked cells are never a weight: grey with a × (small windows) or hatched (diagonal stripes of two
# greys, where cells are too small for marks), never blue, and named in the legend, so that no one
# reads them as weight 0 (nearly white) or 1 (dark blue).
MASK_GREY = "#cfcfcf"
WINDOW_SAND = "#e8c98f"           # keys older than a local layer's window (distinct from the causal grey)
_GREY_SCALE = [[0, MASK_GREY], [1, "#b0b0b0"]]
_SAND_SCALE = [[0, WINDOW_SAND], [1, "#c9a35e"]]


def _hatch(cells: np.ndarray, marked: bool) -> np.ndarray:
    """(W, W) where ``cells``: 0 (one tone, the cells carry marks) or 0/1 diagonal stripes two cells
    wide (a hatch); NaN elsewhere."""
    i, j = np.indices(cells.shape)
    return np.where(cells, 0.0 if marked else ((i + j) // 2) % 2, np.nan)


def attention_heatmap(p: Pattern, view: View, head: int | None = None, query: int | None = None) -> go.Figure:
    """Heatmap of ``head`` (the page's; default the pattern's first): query rows × key columns, masked
    cells grey (×; hatched where cells are too small for marks); on a local layer, keys older than its
    window sand-coloured (·); both named in the legend. The row of ``query``
    (the page's) is marked.

    Reads heatmap_title ({layer}, {head}), axis_query, axis_key, hover_weight, hover_masked, hover_outside,
    legend_masked, legend_outside ({window}), colorbar.
    """
    labels, presenter, k = view.t, view.presenter, p.index_of(head)
    names = plotly_axis(p.tokens, p.window.start)
    w = p.weights[k]
    small = p.window.size <= 32
    gap = 1 if small else 0
    masks = [(p.masked, _GREY_SCALE, "×", "hover_masked", "legend_masked")]
    if p.outside is not None and p.outside.any():
        masks.append((p.outside, _SAND_SCALE, "·", "hover_outside", "legend_outside"))
    data = [dict(type="heatmap", z=_hatch(cells, small), x=names, y=names, colorscale=scale, zmin=0, zmax=1, showscale=False,
                 text=np.where(cells, mark, "") if small else None, texttemplate="%{text}" if small else None,
                 textfont=dict(color="#5f5f5f"), xgap=gap, ygap=gap, showlegend=True,
                 name=f"{mark} " + labels[legend].replace("{window}", str(p.reach)),
                 hovertemplate=labels[hover].replace("{window}", str(p.reach)) + "<extra></extra>")
            for cells, scale, mark, hover, legend in masks]
    data.append(dict(type="heatmap", z=np.round(w, 4), x=names, y=names, colorscale=theme.SEQUENTIAL, zmin=0, zmax=1,
                     colorbar=dict(title=dict(text=labels["colorbar"]), thickness=12), xgap=gap, ygap=gap,
                     hovertemplate=labels["hover_weight"] + "<extra></extra>"))
    shapes = []
    if query is not None and query in p.window:
        row = query - p.window.start
        shapes.append(dict(type="rect", x0=-0.5, x1=row + 0.5, y0=row - 0.5, y1=row + 0.5,
                           line=dict(color=theme.ACCENT, width=2)))
    layout = dict(title=dict(text=labels["heatmap_title"].format(layer=p.layer, head=p.heads[k])),
                  xaxis=dict(title=dict(text=labels["axis_key"]), tickangle=-60, showgrid=False),
                  yaxis=dict(title=dict(text=labels["axis_query"]), autorange="reversed", showgrid=False), shapes=shapes,
                  legend=dict(orientation="h", x=1.0, xanchor="right", y=1.0, yanchor="bottom"))
    return theme.figure(data, layout, presenter, height=360 + 9 * min(p.window.size, 60))


def head_grid(p: Pattern, view: View, head: int | None = None) -> go.Figure:
    """Small multiples: every head of ``p`` as a little heatmap (``head``, the page's, marked ▶).

    Masked cells show the grey background. Reads grid_title ({layer}), grid_head ({head}),
    hover_grid ({head} inside).
    The grid is laid out by hand (axis domains) and built in one go: ``make_subplots`` plus one
    ``add_trace`` per head costs several times more, on every move of the layer slider.
    """
    labels, presenter, chosen = view.t, view.presenter, head
    n = len(p.heads)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    gap_x, gap_y = 0.04, 0.08
    width, height = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    names = plotly_axis(p.tokens, p.window.start)
    data, axes, titles = [], {}, []
    for k, h in enumerate(p.heads):
        row, col = divmod(k, cols)
        suffix = "" if k == 0 else str(k + 1)
        x0, y1 = col * (width + gap_x), 1 - row * (height + gap_y)
        x_domain = [round(max(0.0, x0), 6), round(min(1.0, x0 + width), 6)]     # float sums can leave [0, 1]
        y_domain = [round(max(0.0, y1 - height), 6), round(min(1.0, y1), 6)]
        axes["xaxis" + suffix] = dict(domain=x_domain, anchor="y" + suffix, showticklabels=False,
                                      showgrid=False, zeroline=False)
        axes["yaxis" + suffix] = dict(domain=y_domain, anchor="x" + suffix, showticklabels=False,
                                      showgrid=False, zeroline=False, autorange="reversed")
        data.append(dict(type="heatmap", z=np.round(p.weights[k], 3), x=names, y=names, coloraxis="coloraxis",
                         xaxis="x" + suffix, yaxis="y" + suffix,
                         hovertemplate=labels["hover_grid"].replace("{head}", str(h)) + "<extra></extra>"))
        titles.append(dict(text=("▶ " if h == chosen else "") + labels["grid_head"].format(head=h),
                           x=x0 + width / 2, y=y1, xref="paper", yref="paper", xanchor="center",
                           yanchor="bottom", showarrow=False, font=dict(size=20 if presenter else 12)))
    layout = dict(**axes, annotations=titles, title=dict(text=labels["grid_title"].format(layer=p.layer)),
                  plot_bgcolor=MASK_GREY, margin=dict(t=90 if presenter else 70),
                  coloraxis=dict(colorscale=theme.SEQUENTIAL, cmin=0, cmax=1,
                                 colorbar=dict(thickness=12, title=dict(text=labels["colorbar"]))))
    return theme.figure(data, layout, presenter, height=200 * rows + 80)


def reads_arcs(r: Reads, view: View, max_arcs: int = 24) -> go.Figure:
    """Arcs from the query token to the keys it reads (in ``r.window``); width and opacity follow the weight.

    Reads arcs_title ({token}), hover_arc, axis_position.
    """
    labels, presenter, window = view.t, view.presenter, r.window
    names = plotly_axis(r.tokens)
    q = r.query
    shown = [(j, w) for j, w in r.top(max_arcs, at_least=0.005) if j in window]
    span = max(1, window.size)
    t = np.linspace(0, 1, 24)
    data = []
    for j, w in sorted(shown, key=lambda x: x[1]):             # heaviest drawn last (on top)
        xs = j + (q - j) * t
        ys = (0.15 + 0.85 * abs(q - j) / span) * np.sin(np.pi * t) if j != q else 0.08 * np.sin(np.pi * t)
        if j == q:
            xs = q + 0.35 * np.sin(2 * np.pi * t)
        data.append(dict(type="scatter", x=np.round(xs, 3), y=np.round(ys, 3), mode="lines", showlegend=False,
                         line=dict(color=theme.ACCENT, width=1 + 12 * w), opacity=0.25 + 0.75 * w,
                         hovertemplate=labels["hover_arc"].format(query=names[q], key=names[j], weight=f"{w:.4f}")
                         + "<extra></extra>"))
    pos = list(range(window.start, window.stop))
    weights = [float(r.weights[j]) if j <= q else 0.0 for j in pos]
    data.append(dict(
        type="scatter", x=pos, y=[0] * len(pos), mode="markers", showlegend=False,
        marker=dict(size=[6 + 30 * w for w in weights], color=weights, colorscale=theme.SEQUENTIAL, cmin=0, cmax=1,
                    line=dict(color=["#d62728" if j == q else "#555" for j in pos],
                              width=[3 if j == q else 0.5 for j in pos])),
        customdata=[[names[j], f"{w:.4f}"] for j, w in zip(pos, weights)],
        hovertemplate=labels["hover_arc"].format(query=names[q], key="%{customdata[0]}", weight="%{customdata[1]}")
        + "<extra></extra>"))
    step = max(1, window.size // 48)
    layout = dict(title=dict(text=labels["arcs_title"].format(token=names[q])),
                  xaxis=dict(tickvals=pos[::step], ticktext=[names[j] for j in pos[::step]], tickangle=-60,
                             range=[window.start - 0.8, window.stop - 0.2], showgrid=False,
                             title=dict(text=labels["axis_position"])),
                  yaxis=dict(visible=False, range=[-0.12, 1.1]))
    return theme.figure(data, layout, presenter, height=380)


def qk_steps_figure(k: KeySteps, view: View) -> go.Figure:
    """Four stacked bar charts over the keys in ``k.window``: q·k, × scale, masked, softmax.

    Reads step_scores, step_scaled ({root}, {square}, {scale}), step_masked (or step_masked_window with
    {window} on a local layer), step_softmax, hover_step, minus_inf, steps_title ({token}).
    Laid out by hand (four y domains over one shared x axis): ``make_subplots`` costs several times more.
    """
    s, window, labels, presenter = k.steps, k.window, view.t, view.presenter
    names = plotly_axis(k.tokens)
    pos = list(range(window.start, window.stop))
    x = [names[j] for j in pos]
    seen = s.visible
    colours = [theme.PALETTE[0] if seen[j] else theme.MUTED for j in pos]
    masked_title = (labels["step_masked_window"].format(window=s.window) if s.window is not None
                    else labels["step_masked"])
    titles = [labels["step_scores"], labels["step_scaled"].format(
        root=f"{s.scale_square ** 0.5:g}", square=f"{s.scale_square:g}", scale=f"{s.scale:.4f}"),
        masked_title, labels["step_softmax"]]
    gap, rows = 0.06, 4
    height = (1 - gap * (rows - 1)) / rows
    data, layout, notes = [], {}, []
    for row, values in enumerate((s.scores, s.scaled, s.masked, s.weights)):
        suffix = "" if row == 0 else str(row + 1)
        top = 1 - row * (height + gap)
        layout["yaxis" + suffix] = dict(domain=[round(max(0.0, top - height), 6), round(min(1.0, top), 6)],
                                        anchor="x", **({"rangemode": "tozero"} if row == 3 else {}))
        notes.append(dict(text=titles[row], x=0.5, y=top, xref="paper", yref="paper", xanchor="center",
                          yanchor="bottom", showarrow=False, font=dict(size=16)))
        vals = [float(values[j]) for j in pos]
        data.append(dict(type="bar", x=x, y=[v if math.isfinite(v) else None for v in vals], yaxis="y" + suffix,
                         marker=dict(color=colours if row < 3 else theme.ACCENT), showlegend=False,
                         customdata=[labels["minus_inf"] if not math.isfinite(v) else f"{v:.4f}" for v in vals],
                         hovertemplate=labels["hover_step"] + "<extra></extra>"))
        masked_x = [xi for xi, v in zip(x, vals) if not math.isfinite(v)] if row == 2 else []
        if masked_x:                                   # the masked keys: no bar, a −∞ marker instead
            data.append(dict(type="scatter", x=masked_x, y=[0] * len(masked_x), yaxis="y3", mode="text",
                             text=["−∞"] * len(masked_x), textfont=dict(color=theme.MUTED), showlegend=False,
                             hoverinfo="skip"))
    layout.update(title=dict(text=labels["steps_title"].format(token=names[s.query])), bargap=0.15,
                  annotations=notes, xaxis=dict(tickangle=-60, anchor="y4"), margin=dict(t=70))
    return theme.figure(data, layout, presenter, height=640)


def head_stats_figure(stats: HeadStats, view: View, mark: tuple[int, int] | None = None) -> go.Figure:
    """Four layer × head maps side by side (entropy, previous, first, induction); ``mark`` (the page's
    (layer, head)) outlined.
    When some layers read only a window, each row's label says local or global (global in bold).

    Reads stat_<name> (short title), hover_<name> (explains {value}), axis_layer, axis_head,
    row_local ({layer}), row_global ({layer}). Laid out by hand (four x domains), like :func:`head_grid`.
    """
    labels, presenter, chosen = view.t, view.presenter, mark
    n_layers, n_heads = stats.entropy.shape
    gap, cols = 0.09, len(STATS)
    width = (1 - gap * (cols - 1)) / cols
    data, layout, notes, shapes = [], {}, [], []
    row_labels = None
    if any(w is not None for w in stats.windows):
        row_labels = [labels["row_local"].format(layer=l) if w is not None
                      else "<b>" + labels["row_global"].format(layer=l) + "</b>" for l, w in enumerate(stats.windows)]
    for k, name in enumerate(STATS):
        suffix = "" if k == 0 else str(k + 1)
        x0 = k * (width + gap)
        z = stats.get(name)
        zmax = max(1.0, float(np.nanmax(z))) if name == "entropy" and not np.all(np.isnan(z)) else 1.0
        layout["xaxis" + suffix] = dict(domain=[round(x0, 6), round(min(1.0, x0 + width), 6)], anchor="y" + suffix,
                                        dtick=1, title=dict(text=labels["axis_head"]))
        layout["yaxis" + suffix] = dict(anchor="x" + suffix, autorange="reversed", showticklabels=k == 0,
                                        **({"title": dict(text=labels["axis_layer"])} if k == 0 else {}),
                                        **({"tickvals": list(range(n_layers)), "ticktext": row_labels}
                                           if k == 0 and row_labels else {}))
        data.append(dict(type="heatmap", z=np.round(z, 4), x=list(range(n_heads)), y=list(range(n_layers)),
                         xaxis="x" + suffix, yaxis="y" + suffix, zmin=0, zmax=zmax, colorscale=theme.SEQUENTIAL,
                         reversescale=name == "entropy",
                         colorbar=dict(x=min(x0 + width + 0.005, 1.0), thickness=8, len=0.9, tickfont=dict(size=10)),
                         hovertemplate=labels[f"hover_{name}"].replace("{value}", "%{z:.3f}") + "<extra></extra>"))
        notes.append(dict(text=labels[f"stat_{name}"], x=x0 + width / 2, y=1.0, xref="paper", yref="paper",
                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=16)))
        if chosen is not None:
            shapes.append(dict(type="rect", x0=chosen[1] - 0.5, x1=chosen[1] + 0.5, y0=chosen[0] - 0.5,
                               y1=chosen[0] + 0.5, xref="x" + suffix, yref="y" + suffix,
                               line=dict(color=theme.ACCENT, width=2)))
    layout.update(annotations=notes, shapes=shapes, margin=dict(t=40))
    return theme.figure(data, layout, presenter, height=max(300, 16 * n_layers + 120))
