"""MLP charts: the most active neurons per layer, a token x neuron heatmap, one token's
neurons, and the tokens one neuron pushes up and down."""
from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.analysis.mlp import LayerActivations, MlpOverview, NeuronEffect, NeuronFiring, TokenNeurons
from explainer.figures import theme
from explainer.tokens import for_plotly
from explainer.view import View

POSITIVE = "#d6604d"
NEGATIVE = "#4393c3"


def token_axis(tokens: Sequence[str], positions: Sequence[int]) -> list[str]:
    """Unique category labels "i: token" for a list of positions (tokens by the one rule)."""
    return [f"{i}: {for_plotly(tokens[i])}" for i in positions]


def _bound(values) -> float:
    m = float(max((abs(float(v)) for v in values), default=0.0))
    return m if m > 0 else 1.0


def colour_cap(values, quantile: float = 0.98) -> tuple[float, bool]:
    """A colour range that a few huge outliers cannot wash out: the ``quantile`` of |values|.

    Some neurons reach activations hundreds of times larger than the rest (often on the first
    token); with a plain max every other cell would look white. Returns (cap, whether it clips).
    """
    mags = sorted(abs(float(v)) for v in values)
    if not mags:
        return 1.0, False
    cap = mags[min(len(mags) - 1, int(quantile * len(mags)))]
    cap = cap if cap > 0 else _bound(mags)
    return cap, mags[-1] > cap


def _colorbar(t: Mapping[str, str], cap: float, clipped: bool) -> dict:
    title = t["activation"] + ("<br>" + t["capped"].format(cap=cap) if clipped else "")
    return dict(title=title)


def overview_figure(ov: MlpOverview, view: View) -> go.Figure:
    """Layer (rows) x rank (columns): each cell is one of the layer's strongest neurons at its peak."""
    t, presenter, tokens = view.t, view.presenter, ov.tokens
    n, r = ov.neurons.shape
    peak = ov.peak.tolist()
    custom = [[[int(ov.neurons[l, k]), for_plotly(tokens[int(ov.peak_token[l, k])]), int(ov.peak_token[l, k])]
               for k in range(r)] for l in range(n)]
    text = [[str(int(ov.neurons[l, k])) for k in range(r)] for l in range(n)]
    zmax, clipped = colour_cap([v for row in peak for v in row], 0.95)
    fig = go.Figure(go.Heatmap(
        z=peak, x=list(range(1, r + 1)), y=list(range(n)), customdata=custom, text=text,
        texttemplate="%{text}" if n * r <= 400 else None, textfont=dict(size=9),
        colorscale=theme.DIVERGING, zmid=0, zmin=-zmax, zmax=zmax, colorbar=_colorbar(t, zmax, clipped),
        hovertemplate=(t["layer"] + " %{y} · #%{x}<br>" + t["neuron"] + " %{customdata[0]}<br>" + t["peak_at"]
                       + " %{customdata[2]}: %{customdata[1]}<br>" + t["activation"] + " %{z:.4f}<extra></extra>")))
    fig.update_layout(title=t["overview_title"], xaxis=dict(title=t["axis_rank"], dtick=1),
                      yaxis=dict(title=t["layer"], autorange="reversed", dtick=max(1, n // 15)))
    return theme.apply(fig, presenter, height=max(360, 16 * n + 110))


def layer_heatmap(acts: LayerActivations, view: View) -> go.Figure:
    """Tokens (rows, only ``acts.window``) x the layer's most active neurons (columns), diverging colours."""
    t, presenter, tokens, positions = view.t, view.presenter, acts.tokens, acts.window
    rows = [[float(acts.values[p, j]) for j in range(len(acts.neurons))] for p in positions]
    zmax, clipped = colour_cap([v for row in rows for v in row], 0.99)
    fig = go.Figure(go.Heatmap(
        z=rows, x=[f"n{n}" for n in acts.neurons], y=token_axis(tokens, positions),
        colorscale=theme.DIVERGING, zmid=0, zmin=-zmax, zmax=zmax, colorbar=_colorbar(t, zmax, clipped),
        hovertemplate=t["token"] + " %{y}<br>" + t["neuron"] + " %{x}<br>" + t["activation"] + " %{z:.4f}<extra></extra>"))
    fig.update_layout(title=t["heatmap_title"].format(layer=acts.layer),
                      xaxis=dict(title=t["axis_neuron"], type="category", tickangle=-60),
                      yaxis=dict(autorange="reversed", type="category"))
    return theme.apply(fig, presenter, height=max(320, 20 * len(positions) + 140))


def token_neurons_figure(tn: TokenNeurons, view: View) -> go.Figure:
    """The chosen token's strongest neurons, with their exact signed activation."""
    t, presenter = view.t, view.presenter
    word = for_plotly(tn.label)
    fig = go.Figure(go.Bar(
        x=[f"n{n}" for n in tn.neurons], y=tn.values, marker_color=[POSITIVE if v >= 0 else NEGATIVE for v in tn.values],
        customdata=[[n, word] for n in tn.neurons], text=[f"{v:.2f}" for v in tn.values], textposition="outside",
        cliponaxis=False,
        hovertemplate=(t["token"] + " %{customdata[1]}<br>" + t["neuron"] + " %{customdata[0]}<br>"
                       + t["activation"] + " %{y:.4f}<extra></extra>")))
    fig.update_layout(title=t["token_title"].format(token=word, layer=tn.layer),
                      xaxis=dict(title=t["axis_neuron"], type="category"), yaxis_title=t["activation"])
    return theme.apply(fig, presenter, height=340)


def neuron_effect_figure(effect: NeuronEffect, view: View) -> go.Figure:
    """Two panels: tokens the neuron's output pushes up (left) and down (right), per unit activation."""
    t, presenter = view.t, view.presenter
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.2, subplot_titles=(t["pushes_up"], t["pushes_down"]))
    for col, (labels, scores, colour) in enumerate(((effect.up_labels, effect.up_scores, POSITIVE),
                                                    (effect.down_labels, effect.down_scores, NEGATIVE)), start=1):
        ys = [for_plotly(s) + "\u200b" * i for i, s in enumerate(labels)]  # unique categories
        fig.add_bar(y=ys, x=scores, orientation="h", marker_color=colour, showlegend=False, row=1, col=col,
                    customdata=[[for_plotly(s)] for s in labels],
                    hovertemplate="%{customdata[0]}<br>" + t["logit_change"] + " %{x:+.4f}<extra></extra>")
        fig.update_yaxes(autorange="reversed", type="category", row=1, col=col)
    fig.update_xaxes(title=t["logit_change"])
    fig.update_layout(title=t["effect_title"].format(layer=effect.layer, neuron=effect.neuron))
    fig = theme.apply(fig, presenter, height=max(360, 26 * len(effect.up_labels) + 160))
    return fig.update_layout(margin_t=110 if presenter else 85)


def neuron_tokens_figure(effect: NeuronFiring, view: View) -> go.Figure:
    """The chosen neuron's activation at each prompt token (only ``effect.window``)."""
    t, presenter, tokens, positions = view.t, view.presenter, effect.tokens, effect.window
    values = [effect.activations[p] for p in positions]
    fig = go.Figure(go.Bar(
        x=token_axis(tokens, positions), y=values, marker_color=[POSITIVE if v >= 0 else NEGATIVE for v in values],
        hovertemplate=t["token"] + " %{x}<br>" + t["activation"] + " %{y:.4f}<extra></extra>"))
    fig.update_layout(title=t["fires_title"].format(layer=effect.layer, neuron=effect.neuron),
                      xaxis=dict(type="category", tickangle=-45), yaxis_title=t["activation"])
    return theme.apply(fig, presenter, height=320)
