"""Why this answer? Each head's push as a layer × head map, a bar per MLP layer, the input tokens
coloured by how much each made the answer, and the predicted beside the measured change.

Builders are ``build(result, view)``; signed values use the diverging scale centred on 0 (red
pushes the answer up, blue down). The answer's label comes from the result, the words from
``view.t``.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explainer import tokens
from explainer.analysis.attribution_inputs import InputAttribution
from explainer.analysis.why import AnswerPushes, SwitchOffCheck
from explainer.export import rounded
from explainer.figures import theme
from explainer.figures.tokens import Chip, chip_row
from explainer.view import View

UP, DOWN = "#d62728", "#1f77b4"          # the ends of theme.DIVERGING


def _answer(p: AnswerPushes, view: View) -> str:
    """The answer (and what it is compared with) for a chart title, escaped for plotly."""
    answer = tokens.for_plotly(p.target_label)
    if p.contrast_label is None:
        return answer
    return view.t["versus"].format(answer=answer, other=tokens.for_plotly(p.contrast_label))


def heads_figure(p: AnswerPushes, view: View) -> go.Figure:
    """Layer × head map of each head's push on the answer's logit; the strongest three outlined,
    switched-off heads crossed. Reads ``heads_title`` ({answer}), ``hover_head``, ``axis_layer``, ``axis_head``."""
    heads = p.attribution.heads                                          # (L, H)
    n_layers, n_heads = heads.shape
    span = max(float(np.abs(heads).max()), 1e-9)
    hover = view.t["hover_head"].replace("{layer}", "%{y}").replace("{head}", "%{x}").replace("{value}", "%{z:+.3f}")
    fig = go.Figure(go.Heatmap(z=rounded(heads), x=list(range(n_heads)), y=list(range(n_layers)),
                               colorscale=theme.DIVERGING, zmid=0, zmin=-span, zmax=span,
                               colorbar=dict(thickness=10), hovertemplate=hover + "<extra></extra>"))
    for c in p.top_heads:
        fig.add_shape(type="rect", x0=c.head - 0.5, x1=c.head + 0.5, y0=c.layer - 0.5, y1=c.layer + 0.5,
                      line=dict(color="#000000", width=2))
    off = sorted(p.ablated_heads)
    if off:
        fig.add_trace(go.Scatter(x=[h for _, h in off], y=[l for l, _ in off], mode="text", text=["×"] * len(off),
                                 textfont=dict(size=16, color="#000000"), hoverinfo="skip", showlegend=False))
    fig.update_layout(title=view.t["heads_title"].format(answer=_answer(p, view)))
    fig.update_yaxes(autorange="reversed", title=view.t["axis_layer"], dtick=1 if n_layers <= 20 else 2)
    fig.update_xaxes(title=view.t["axis_head"], dtick=1)
    return theme.apply(fig, view.presenter, height=max(320, 15 * n_layers + 120))


def mlps_figure(p: AnswerPushes, view: View) -> go.Figure:
    """A bar per MLP layer, with the embedding first and the biases last (together with the heads
    they add up to the logit). Reads ``mlps_title`` ({answer}), ``bar_embedding``, ``bar_mlp``
    ({layer}), ``bar_biases``, ``short_embedding``, ``short_biases``, ``axis_mlp``, ``axis_push``, ``hover_bar``."""
    a = p.attribution
    ticks = [view.t["short_embedding"]] + [str(l) for l in range(p.n_layers)] + [view.t["short_biases"]]
    names = [view.t["bar_embedding"]] + [view.t["bar_mlp"].format(layer=l) for l in range(p.n_layers)] \
        + [view.t["bar_biases"]]
    values = [a.embedding, *a.mlps.tolist(), a.biases]
    colours = [UP if v >= 0 else DOWN for v in values]
    colours[0] = colours[-1] = theme.MUTED
    hover = view.t["hover_bar"].replace("{name}", "%{customdata}").replace("{value}", "%{y:+.3f}")
    fig = go.Figure(go.Bar(x=list(range(len(values))), y=np.round(values, 4), marker_color=colours, customdata=names,
                           hovertemplate=hover + "<extra></extra>"))
    step = max(1, -(-p.n_layers // 10))                                 # about ten layer ticks
    shown = [0] + [i for i in range(2, len(values) - 1) if (i - 1) % step == 0] + [len(values) - 1]
    fig.update_layout(title=view.t["mlps_title"].format(answer=_answer(p, view)), yaxis_title=view.t["axis_push"],
                      xaxis_title=view.t["axis_mlp"], bargap=0.15)
    fig.update_xaxes(tickvals=shown, ticktext=[ticks[i] for i in shown], tickangle=0)
    return theme.apply(fig, view.presenter, height=360)


def _chip_background(score: float, span: float) -> str:
    strength = min(abs(score) / span, 1.0) if span > 0 else 0.0
    r, g, b = (214, 39, 40) if score >= 0 else (31, 119, 180)
    return f"rgba({r},{g},{b},{0.08 + 0.72 * strength:.2f})"


def inputs_html(r: InputAttribution, view: View) -> str:
    """The text's tokens as chips coloured by their score (red raised the answer's probability,
    blue lowered it), the score in percentage points under each. Reads ``chip_hover``
    ({score}, {id}), ``chip_kept``; characters split over tokens span their chips."""
    span = float(np.abs(r.scores).max()) if len(r.scores) else 0.0
    chips = []
    for i, (label, tid, score) in enumerate(zip(r.tokens, r.token_ids, r.scores)):
        kept = i in r.kept
        title = view.t["chip_kept"] if kept else view.t["chip_hover"].format(score=f"{100 * score:+.2f}", id=tid)
        chips.append(Chip(label, r.pieces[i] if r.pieces else label.encode(), "—" if kept else f"{100 * score:+.0f}",
                          title, "#f3f3f3" if kept else _chip_background(float(score), span)))
    groups = tokens.character_groups(r.pieces) if r.pieces else ()
    return chip_row(chips, groups, view, wrap=True)


def inputs_figure(r: InputAttribution, view: View) -> go.Figure:
    """A bar per input token: how many percentage points of the answer's probability it brought.
    Reads ``inputs_title`` ({method}), ``axis_token``, ``axis_points``, ``hover_token``."""
    names = tokens.plotly_axis(r.tokens)
    points = np.round(100 * np.asarray(r.scores), 3)
    hover = view.t["hover_token"].replace("{token}", "%{x}").replace("{value}", "%{y:+.2f}")
    fig = go.Figure(go.Bar(x=names, y=points, marker_color=[UP if v >= 0 else DOWN for v in points],
                           hovertemplate=hover + "<extra></extra>"))
    fig.update_layout(title=view.t["inputs_title"].format(method=view.t["method_" + r.method]),
                      xaxis_title=view.t["axis_token"], yaxis_title=view.t["axis_points"],
                      xaxis_tickangle=-45 if len(names) > 8 else 0)
    return theme.apply(fig, view.presenter, height=340)


def switch_off_figure(check: SwitchOffCheck, view: View) -> go.Figure:
    """Two bars: the change of the answer's logit the attribution predicted, and the change measured.
    Reads ``check_title``, ``bar_predicted``, ``bar_measured``, ``axis_change``."""
    names = [view.t["bar_predicted"], view.t["bar_measured"]]
    values = [check.predicted, check.measured]
    fig = go.Figure(go.Bar(y=names, x=np.round(values, 4), orientation="h", marker_color=[theme.MUTED, theme.ACCENT],
                           text=[f"{v:+.2f}" for v in values], textposition="auto",
                           hovertemplate="%{y}: %{x:+.3f}<extra></extra>"))
    fig.update_layout(title=view.t["check_title"], xaxis_title=view.t["axis_change"])
    fig.update_yaxes(autorange="reversed")
    return theme.apply(fig, view.presenter, height=240)
