"""Position figures: the learned position table (GPT-2) and rotary positions (Llama).

Builders are ``build(result, view)``: every shown string comes from ``view.t`` (the keys each
builder reads are listed in its docstring); tokens are shown by the one rule (explainer.tokens).
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explainer.analysis.position import (AddedPositions, DistanceCurve, LearnedPositions, PositionSimilarity,
                                         RealDistance, RotaryFrequencies)
from explainer.export import rounded
from explainer.figures import theme
from explainer.tokens import plotly_axis
from explainer.view import View

_LEGEND = dict(x=1, xanchor="right", y=1, yanchor="top", bgcolor="rgba(255,255,255,0.8)")


def position_vectors_figure(lp: LearnedPositions, view: View) -> go.Figure:
    """Heatmap of position vectors: one row per (sampled) position, one column per (sampled) dimension.

    Reads vectors_title, axis_position, axis_dim, hover_vector, colorbar_value.
    """
    labels, presenter = view.t, view.presenter
    fig = go.Figure(go.Heatmap(
        z=rounded(lp.vectors), x=list(lp.dims), y=list(lp.positions), colorscale=theme.DIVERGING, zmid=0,
        colorbar=dict(title=labels["colorbar_value"], thickness=12),
        hovertemplate=labels["hover_vector"] + "<extra></extra>"))
    fig.update_layout(title=labels["vectors_title"], xaxis_title=labels["axis_dim"],
                      yaxis_title=labels["axis_position"])
    fig.update_yaxes(autorange="reversed")
    return theme.apply(fig, presenter, height=460)


def position_similarity_figure(lp: PositionSimilarity, view: View) -> go.Figure:
    """Cosine similarity between position vectors (position × position), diverging around 0.

    Reads similarity_title, axis_position, hover_similarity, colorbar_cosine.
    """
    labels, presenter = view.t, view.presenter
    fig = go.Figure(go.Heatmap(
        z=rounded(lp.similarity, 3), x=list(lp.positions), y=list(lp.positions), colorscale=theme.DIVERGING,
        zmid=0, zmin=-1, zmax=1, colorbar=dict(title=labels["colorbar_cosine"], thickness=12),
        hovertemplate=labels["hover_similarity"] + "<extra></extra>"))
    fig.update_layout(title=labels["similarity_title"], xaxis_title=labels["axis_position"],
                      yaxis_title=labels["axis_position"])
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    return theme.apply(fig, presenter, height=460)


def added_norms_figure(added: AddedPositions, view: View) -> go.Figure:
    """Bars: length of the token vector, the position vector and their sum at each prompt position.

    Reads added_title, series_token, series_position, series_sum, axis_token, axis_norm, hover_norm.
    """
    labels, presenter = view.t, view.presenter
    names = plotly_axis(added.tokens)
    fig = go.Figure()
    for values, key, colour in ((added.token_norm, "series_token", theme.PALETTE[0]),
                                (added.position_norm, "series_position", theme.PALETTE[1]),
                                (added.sum_norm, "series_sum", theme.PALETTE[2])):
        fig.add_trace(go.Bar(x=names, y=rounded(values), name=labels[key], marker_color=colour,
                             hovertemplate=labels["hover_norm"].replace("{series}", labels[key]) + "<extra></extra>"))
    fig.update_layout(title=labels["added_title"], xaxis_title=labels["axis_token"], yaxis_title=labels["axis_norm"],
                      barmode="group", legend=_LEGEND)
    fig.update_xaxes(tickangle=-60)
    return theme.apply(fig, presenter, height=380)


def rotary_frequency_figure(f: RotaryFrequencies, view: View) -> go.Figure:
    """Wavelength (tokens per full turn) of every dimension pair, on a log scale.

    Reads freq_title, axis_pair, axis_wavelength, hover_freq.
    """
    labels, presenter = view.t, view.presenter
    pairs = list(range(len(f.wavelength)))
    fig = go.Figure(go.Scatter(
        x=pairs, y=np.round(f.wavelength, 3), mode="lines+markers", marker=dict(color=theme.PALETTE[0]),
        customdata=np.round(np.stack([f.inv_freq, np.degrees(f.inv_freq)], -1), 6),
        hovertemplate=labels["hover_freq"] + "<extra></extra>"))
    fig.update_layout(title=labels["freq_title"], xaxis_title=labels["axis_pair"],
                      yaxis_title=labels["axis_wavelength"])
    fig.update_yaxes(type="log")
    return theme.apply(fig, presenter, height=360)


def distance_curve_figure(c: DistanceCurve, view: View) -> go.Figure:
    """q·k of the same vector placed ``distance`` tokens apart, relative to distance 0.

    Reads curve_title, series_one, series_average, axis_distance, axis_relative, hover_curve.
    """
    labels, presenter = view.t, view.presenter
    fig = go.Figure()
    for values, key, colour in ((c.one_pair, "series_one", theme.PALETTE[1]), (c.average, "series_average", theme.PALETTE[0])):
        fig.add_trace(go.Scatter(x=c.distance.tolist(), y=np.round(values, 4), mode="lines", name=labels[key],
                                 line=dict(color=colour, width=2),
                                 hovertemplate=labels["hover_curve"].replace("{series}", labels[key]) + "<extra></extra>"))
    fig.add_hline(y=0, line_color=theme.MUTED, line_width=1)
    fig.update_layout(title=labels["curve_title"], xaxis_title=labels["axis_distance"],
                      yaxis_title=labels["axis_relative"], legend=_LEGEND)
    return theme.apply(fig, presenter, height=380)


def real_distance_figure(r: RealDistance, view: View) -> go.Figure:
    """The chosen query's scaled q·k with each earlier key against their distance, with and without RoPE.

    Reads real_title ({layer}, {head}, {token}), series_rotated, series_unrotated, axis_distance, axis_score,
    hover_real.
    """
    labels, presenter = view.t, view.presenter
    names = plotly_axis(r.tokens)
    keys = [names[r.query - int(d)] for d in r.distance]
    fig = go.Figure()
    for values, key, colour, symbol in ((r.unrotated, "series_unrotated", theme.MUTED, "circle-open"),
                                        (r.rotated, "series_rotated", theme.ACCENT, "circle")):
        fig.add_trace(go.Scatter(
            x=r.distance.tolist(), y=np.round(values, 4), mode="markers+lines", name=labels[key],
            marker=dict(color=colour, symbol=symbol, size=8), line=dict(color=colour, width=1),
            customdata=keys, hovertemplate=labels["hover_real"].replace("{series}", labels[key]) + "<extra></extra>"))
    fig.update_layout(title=labels["real_title"].format(layer=r.layer, head=r.head, token=names[r.query]),
                      xaxis_title=labels["axis_distance"], yaxis_title=labels["axis_score"],
                      legend=_LEGEND)
    return theme.apply(fig, presenter, height=380)
