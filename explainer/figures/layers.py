"""Figures for the Layers page: residual norms, block writes, the logit-lens grid, answer growth.

Builders are ``build(result, view)``: visible strings come from ``view.t`` (each builder lists
the keys it reads), tokens are shown by the one rule (explainer.tokens). Row ``L`` on the layer
axis is the stream entering block ``L``; the top row is what leaves the last block.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.analysis.residual import AnswerGrowth, BlockWrites, LensReadout, ResidualNorms
from explainer.figures import theme
from explainer.numbers import human
from explainer.tokens import for_plotly, plotly_axis, plotly_text, shown
from explainer.view import View


def cell_label(token: str, limit: int = 8) -> str:
    """A short label for a grid cell: the token by the one rule, cut to ``limit`` characters."""
    text = shown(token)
    return plotly_text(text if len(text) <= limit else text[:limit - 1] + "…")


def _mark_column(fig: go.Figure, column: int | None, n_rows: int, **where) -> None:
    if column is not None:
        fig.add_shape(type="rect", x0=column - 0.5, x1=column + 0.5, y0=-0.5, y1=n_rows - 0.5,
                      line=dict(color=theme.ACCENT, width=2), **where)


def norms_figure(res: ResidualNorms, view: View, position: int | None = None) -> go.Figure:
    """Heatmap (layer × position) of the residual norm; colour is log10, hover the exact norm.

    The column of ``position`` (the page's) is marked. Reads ``norms_title``, ``axis_position``, ``axis_layer``,
    ``norm``.
    """
    labels, presenter = view.t, view.presenter
    norms = np.asarray(res.norms, dtype=np.float32)                 # (n+1, T)
    logs = np.log10(np.maximum(norms, 1e-6)).astype(np.float32)
    # A first token far longer than the rest would wash everything else out: cap the colours there.
    rest = logs[:, 1:] if res.first_token_stands_out() else logs
    lo, hi = float(logs.min()), float(rest.max())
    hi = max(hi, lo + 1)
    ticks = list(range(int(np.ceil(lo)), int(np.floor(hi)) + 1))
    fig = go.Figure(go.Heatmap(
        z=logs, x=plotly_axis(res.tokens), y=list(range(norms.shape[0])), customdata=norms,
        colorscale=theme.SEQUENTIAL, zmin=lo, zmax=hi,
        colorbar=dict(title=labels["norm"], tickvals=ticks, ticktext=[human(10.0 ** k) for k in ticks]),
        hovertemplate=f"%{{x}}<br>{labels['axis_layer']} %{{y}}<br>{labels['norm']} %{{customdata:,.2f}}"
                      "<extra></extra>"))
    _mark_column(fig, position, norms.shape[0])
    fig.update_layout(title=labels["norms_title"], xaxis=dict(title=labels["axis_position"], type="category"),
                      yaxis=dict(title=labels["axis_layer"]))
    return theme.apply(fig, presenter, height=460)


def writes_figure(writes: BlockWrites, view: View) -> go.Figure:
    """Norm of what attention and MLP write in each block: at ``writes.position`` and the median over positions.

    Reads ``writes_title``, ``axis_block``, ``writes_axis``, ``attn``, ``mlp``, ``median``, ``norm``.
    """
    labels, presenter, position = view.t, view.presenter, writes.position
    blocks = list(range(writes.attn.shape[0]))
    token = for_plotly(writes.tokens[position])
    series = [
        (f"{labels['attn']} · {position}: {token}", writes.attn[:, position], theme.PALETTE[0], "solid"),
        (f"{labels['mlp']} · {position}: {token}", writes.mlp[:, position], theme.PALETTE[1], "solid"),
        (f"{labels['attn']} · {labels['median']}", writes.attn_median, theme.PALETTE[0], "dot"),
        (f"{labels['mlp']} · {labels['median']}", writes.mlp_median, theme.PALETTE[1], "dot"),
    ]
    fig = go.Figure()
    for name, values, colour, dash in series:
        fig.add_trace(go.Scatter(
            x=blocks, y=np.asarray(values, dtype=np.float32), name=name, mode="lines+markers",
            line=dict(color=colour, dash=dash, width=3 if dash == "solid" else 2),
            marker=dict(size=7 if dash == "solid" else 4),
            hovertemplate=f"{name}<br>{labels['axis_block']} %{{x}}<br>{labels['norm']} %{{y:,.2f}}<extra></extra>"))
    fig.update_layout(title=labels["writes_title"], legend=dict(orientation="h", y=-0.25),
                      xaxis=dict(title=labels["axis_block"], dtick=1 if len(blocks) <= 12 else 2),
                      yaxis=dict(title=labels["writes_axis"], type="log", dtick=1))
    return theme.apply(fig, presenter, height=420)


def lens_grid_figure(readout: LensReadout, view: View, position: int | None = None) -> go.Figure:
    """Layer × position grid of the logit lens's top guess (text), coloured by its probability.

    Draws the readout's positions (a window: pass one of at most ~64 positions) and marks
    ``position`` (the page's). Reads ``lens_title``, ``axis_position``, ``axis_layer``, ``top_guess``,
    ``final_answer``.
    """
    labels, presenter = view.t, view.presenter
    start, stop = readout.start, readout.stop
    probs = np.asarray(readout.top_probs, dtype=np.float32)                    # (n+1, W)
    grid = readout.top_labels
    answers = [for_plotly(a) for a in readout.answer_labels]
    answer_p = readout.answer_probs
    custom = [[[for_plotly(lab), answers[j], float(answer_p[l, j])] for j, lab in enumerate(row)]
              for l, row in enumerate(grid)]
    fig = go.Figure(go.Heatmap(
        z=probs, x=plotly_axis(readout.tokens, start), y=list(range(probs.shape[0])),
        text=[[cell_label(lab) for lab in row] for row in grid], texttemplate="%{text}",
        textfont=dict(size=15 if presenter else 10), customdata=custom,
        colorscale=theme.SEQUENTIAL, zmin=0, zmax=1, xgap=1, ygap=1,
        colorbar=dict(title=labels["top_guess"], tickformat=".0%"),
        hovertemplate=(f"%{{x}} · {labels['axis_layer']} %{{y}}<br>{labels['top_guess']}: %{{customdata[0]}} "
                       f"%{{z:.2%}}<br>{labels['final_answer']} %{{customdata[1]}}: %{{customdata[2]:.2%}}"
                       "<extra></extra>")))
    if position is not None and start <= position < stop:
        _mark_column(fig, position - start, probs.shape[0])
    fig.update_layout(title=labels["lens_title"], xaxis=dict(title=labels["axis_position"], type="category"),
                      yaxis=dict(title=labels["axis_layer"], dtick=1 if probs.shape[0] <= 12 else 2))
    return theme.apply(fig, presenter, height=max(420, 22 * probs.shape[0] + 140))


def growth_figure(g: AnswerGrowth, view: View) -> go.Figure:
    """Probability (left) and rank (right, log axis, 1 = top) of the final answer per layer.

    Reads ``prob_title``, ``rank_title``, ``axis_layer``, ``answer_prob``, ``top_prob``,
    ``top_guess``, ``rank``, ``first_top``.
    """
    labels, presenter = view.t, view.presenter
    layers = list(range(g.n_layers + 1))
    answer = for_plotly(g.answer)
    tops = [for_plotly(t) for t in g.top_labels]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=(labels["prob_title"].format(answer=answer),
                                        labels["rank_title"].format(answer=answer)))
    hover_top = f"<br>{labels['top_guess']}: %{{customdata}}"
    fig.add_trace(go.Scatter(
        x=layers, y=g.probs.astype(np.float32), customdata=tops, mode="lines+markers",
        name=labels["answer_prob"].format(answer=answer), line=dict(color=theme.ACCENT, width=3),
        hovertemplate=f"{labels['axis_layer']} %{{x}}<br>P({answer}) %{{y:.2%}}{hover_top}<extra></extra>"),
        row=1, col=1)
    fig.add_trace(go.Scatter(
        x=layers, y=g.top_probs.astype(np.float32), customdata=tops, mode="lines",
        name=labels["top_prob"], line=dict(color=theme.MUTED, dash="dot", width=2),
        hovertemplate=f"{labels['axis_layer']} %{{x}}{hover_top} %{{y:.2%}}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=layers, y=(g.ranks + 1).astype(np.int64), customdata=tops, mode="lines+markers",
        name=labels["rank"], line=dict(color=theme.PALETTE[0], width=3), showlegend=False,
        hovertemplate=f"{labels['axis_layer']} %{{x}}<br>{labels['rank']} {answer}: %{{y:,}}{hover_top}"
                      "<extra></extra>"), row=1, col=2)
    for col in (1, 2):
        fig.add_vline(x=g.first_layer, line=dict(color=theme.ACCENT, dash="dash", width=1.5), row=1, col=col)
    fig.add_annotation(x=g.first_layer, y=1.02, xref="x", yref="y", text=labels["first_top"],
                       showarrow=False, xanchor="right", font=dict(color=theme.ACCENT))
    fig.update_xaxes(title=labels["axis_layer"], range=[-0.5, g.n_layers + 0.5])
    fig.update_yaxes(range=[0, 1.08], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(type="log", autorange="reversed", dtick=1, row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return theme.apply(fig, presenter, height=400)
