"""Before/after figures: a next-token distribution that changed, head maps side by side, answer growth.

Builders are ``build(result, view)``. The names of the two sides come from ``view.t``: ``before``
and ``after`` for a distribution (Intervene; the compare section sets them to its two sides),
``left`` and ``right`` for the compare section's maps and curves.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.analysis.compare import DistributionChange, GrowthComparison, HeadMapComparison
from explainer.figures import theme
from explainer.tokens import for_plotly
from explainer.view import View


def distribution_change_figure(change: DistributionChange, view: View) -> go.Figure:
    """Grouped bars per token (before vs after); the change is printed on each pair and in the hover.

    Reads ``before``, ``after``, ``chart_title``, ``prob``.
    """
    before_name, after_name = view.t["before"], view.t["after"]
    names = [for_plotly(label) for label in change.labels]
    custom = [[name, b, a, a - b] for name, b, a in zip(names, change.before, change.after)]
    hover = "%{customdata[0]}<br>" + before_name + ": %{customdata[1]:.4f}<br>" + after_name + \
            ": %{customdata[2]:.4f}<br>Δ %{customdata[3]:+.4f}<extra></extra>"
    fig = go.Figure([
        go.Bar(name=before_name, x=names, y=change.before, marker_color=theme.MUTED, customdata=custom,
               hovertemplate=hover),
        go.Bar(name=after_name, x=names, y=change.after, customdata=custom, hovertemplate=hover,
               marker_color=[theme.ACCENT if d < 0 else theme.PALETTE[2] for d in change.delta],
               text=[f"{d:+.3f}" for d in change.delta], textposition="outside"),
    ])
    fig.update_layout(barmode="group", title=view.t["chart_title"], yaxis_title=view.t["prob"], xaxis_tickangle=-30,
                      legend=dict(orientation="h", y=1.08))
    return theme.apply(fig, view.presenter, height=420)


def head_maps_figure(comp: HeadMapComparison, view: View) -> go.Figure:
    """Side-by-side layer × head maps of one statistic, and their difference when shapes match.

    Reads ``left``, ``right``, ``difference``; ``layer`` and ``head`` from the common texts.
    """
    diff_name, layer_label, head_label = view.t["difference"], view.common["layer"], view.common["head"]
    diff = comp.difference
    panels = [(comp.left, view.t["left"]), (comp.right, view.t["right"])] + ([(diff, diff_name)] if diff is not None
                                                                             else [])
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for _, name in panels],
                        horizontal_spacing=0.08)
    for col, (values, name) in enumerate(panels, start=1):
        signed = name == diff_name
        fig.add_trace(go.Heatmap(
            z=values, colorscale=theme.DIVERGING if signed else theme.SEQUENTIAL,
            zmid=0 if signed else None, zmin=None if signed else 0, zmax=None if signed else 1,
            showscale=col == len(panels), coloraxis=None,
            hovertemplate=f"{name}<br>{layer_label} %{{y}} · {head_label} %{{x}}<br>%{{z:.4f}}<extra></extra>"),
            row=1, col=col)
        fig.update_xaxes(title_text=head_label, row=1, col=col)
        fig.update_yaxes(title_text=layer_label if col == 1 else None, autorange="reversed", row=1, col=col)
    return theme.apply(fig, view.presenter, height=420)


def growth_figure(comp: GrowthComparison, view: View) -> go.Figure:
    """How each side's final answer gains probability through the depth of its model.

    Reads ``left``, ``right``, ``depth``, ``answer_prob``; ``layer`` from the common texts.
    """
    fig = go.Figure()
    layer_word = view.common["layer"]
    for depth, probs, answer, name, colour in (
            (comp.depth_left, comp.probs_left, comp.answer_left, view.t["left"], theme.PALETTE[0]),
            (comp.depth_right, comp.probs_right, comp.answer_right, view.t["right"], theme.ACCENT)):
        layers = np.arange(len(depth))
        label = f"{name}: {for_plotly(answer)}"
        fig.add_trace(go.Scatter(x=depth, y=probs, mode="lines+markers", name=label, line_color=colour,
                                 customdata=layers,
                                 hovertemplate=label + f"<br>{layer_word} %{{customdata}}<br>p = %{{y:.4f}}"
                                 "<extra></extra>"))
    fig.update_layout(xaxis_title=view.t["depth"], yaxis_title=view.t["answer_prob"], yaxis_range=[0, 1],
                      legend=dict(orientation="h", y=1.1))
    return theme.apply(fig, view.presenter, height=380)
