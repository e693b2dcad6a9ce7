"""Position figures: the learned position table (GPT-2) and rotary positions (Llama).

Builders are ``build(result, view)``: every shown string comes from ``view.t`` (the keys each
builder reads are listed in its docstring); tokens are shown by the one rule (explainer.tokens).
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from explainer.analysis.position import (AddedPositions, DistanceCurves, LearnedPositions, PositionSimilarity,
                                         RealDistance, RotaryBases)
from explainer.export import rounded
from explainer.figures import theme
from explainer.tokens import plotly_axis
from explainer.view import View

_LEGEND = dict(x=1, xanchor="right", y=1, yanchor="top", bgcolor="rgba(255,255,255,0.8)")
_LEGEND_LEFT = dict(x=0, xanchor="left", y=0, yanchor="bottom", bgcolor="rgba(255,255,255,0.8)")
_LEGEND_LOW = dict(x=1, xanchor="right", y=0, yanchor="bottom", bgcolor="rgba(255,255,255,0.8)")


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


def base_name(theta: float, window: int | None, view: View) -> str:
    """A rotary base's legend name: its θ and the layers that use it. Reads series_base_local
    ({theta}, {window}), series_base_global ({theta})."""
    key = "series_base_local" if window is not None else "series_base_global"
    return view.t[key].format(theta=f"{theta:,.0f}", window=f"{window:,}" if window else "")


def rotary_frequency_figure(b: RotaryBases, view: View) -> go.Figure:
    """Wavelength (tokens per full turn) of every dimension pair, one line per rotary base, log scale.
    With several bases, lines mark the local window and the longest context.

    Reads freq_title, axis_pair, axis_wavelength, hover_freq, and with several bases series_base_*,
    line_window ({window}), line_context ({context}).
    """
    labels, presenter, several = view.t, view.presenter, len(b.bases) > 1
    fig = go.Figure()
    for k, (f, window) in enumerate(zip(b.bases, b.windows)):
        name = base_name(f.theta, window, view) if several else ""
        fig.add_trace(go.Scatter(
            x=list(range(len(f.wavelength))), y=np.round(f.wavelength, 3), mode="lines+markers", name=name,
            marker=dict(color=theme.PALETTE[k], size=5 if several else 6), line=dict(color=theme.PALETTE[k]),
            customdata=np.round(np.stack([f.inv_freq, np.degrees(f.inv_freq)], -1), 6), showlegend=several,
            hovertemplate=(name + "<br>" if several else "") + labels["hover_freq"] + "<extra></extra>"))
    if several:
        window = max((w for w in b.windows if w), default=None)
        lines = ([(window, labels["line_window"].format(window=f"{window:,}"))] if window else []) + [
            (b.context, labels["line_context"].format(context=f"{b.context:,}"))]
        for y, text in lines:           # annotations on a log axis take the exponent, so they are placed by hand
            fig.add_hline(y=y, line_dash="dot", line_color=theme.MUTED)
            fig.add_annotation(x=0, xref="paper", y=math.log10(y), yref="y", text=text, showarrow=False,
                               xanchor="left", yanchor="bottom", font=dict(color="#555555"))
    fig.update_layout(title=labels["freq_title"], xaxis_title=labels["axis_pair"],
                      yaxis_title=labels["axis_wavelength"], legend=_LEGEND_LOW)
    fig.update_yaxes(type="log")
    return theme.apply(fig, presenter, height=400 if several else 360)


def distance_curve_figure(c: DistanceCurves, view: View) -> go.Figure:
    """q·k of the same vector placed ``distance`` tokens apart, relative to distance 0.

    One base: one random vector and the average over random vectors. Several bases: per base the
    average (thin, faint) and the same smoothed over nearby distances (thick), on a log distance axis
    out to the model's context. Reads curve_title, series_one, series_average, series_smoothed,
    axis_distance, axis_relative, hover_curve, series_base_*.
    """
    labels, presenter, several = view.t, view.presenter, len(c.curves) > 1
    fig = go.Figure()
    for k, (curve, theta) in enumerate(zip(c.curves, c.thetas)):
        if several:
            base = base_name(theta, c.windows[k], view)
            series = [(curve.average, base + " · " + labels["series_average"], 1, 0.35, False),
                      (curve.smoothed, base + " · " + labels["series_smoothed"], 3, 1.0, True)]
            colours = (theme.PALETTE[k],) * 2
        else:
            series = [(curve.one_pair, labels["series_one"], 2, 1.0, True),
                      (curve.average, labels["series_average"], 2, 1.0, True)]
            colours = (theme.PALETTE[1], theme.PALETTE[0])
        for (values, name, width, opacity, legend), colour in zip(series, colours):
            fig.add_trace(go.Scatter(
                x=curve.distance.tolist(), y=np.round(values, 4), mode="lines", name=name, opacity=opacity,
                showlegend=legend, line=dict(color=colour, width=width),
                hovertemplate=labels["hover_curve"].replace("{series}", name) + "<extra></extra>"))
    fig.add_hline(y=0, line_color=theme.MUTED, line_width=1)
    fig.update_layout(title=labels["curve_title"], xaxis_title=labels["axis_distance"],
                      yaxis_title=labels["axis_relative"], legend=_LEGEND_LEFT if several else _LEGEND)
    if several:
        fig.update_xaxes(type="log")
    return theme.apply(fig, presenter, height=420 if several else 380)


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
