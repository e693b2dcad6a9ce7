"""Before/after bars for a next-token distribution that changed."""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.analysis.compare import DistributionChange, GrowthComparison, HeadMapComparison
from explainer.figures import theme


def distribution_change_figure(change: DistributionChange, labels: Sequence[str], before_name: str = "before",
                               after_name: str = "after", title: str = "", prob_label: str = "probability",
                               presenter: bool = False) -> go.Figure:
    """Grouped bars per token (before vs after); the change is printed on each pair and in the hover."""
    names = [html.escape(label) for label in labels]
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
    fig.update_layout(barmode="group", title=title, yaxis_title=prob_label, xaxis_tickangle=-30,
                      legend=dict(orientation="h", y=1.08))
    return theme.apply(fig, presenter, height=420)


def head_maps_figure(comp: HeadMapComparison, left_name: str, right_name: str, diff_name: str,
                     layer_label: str = "layer", head_label: str = "head", presenter: bool = False) -> go.Figure:
    """Side-by-side layer × head maps of one statistic, and their difference when shapes match."""
    diff = comp.difference
    panels = [(comp.left, left_name), (comp.right, right_name)] + ([(diff, diff_name)] if diff is not None else [])
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
    return theme.apply(fig, presenter, height=420)


def growth_figure(comp: GrowthComparison, left_name: str, right_name: str, depth_label: str = "depth (layer / layers)",
                  prob_label: str = "probability of the final answer", presenter: bool = False) -> go.Figure:
    """How each side's final answer gains probability through the depth of its model."""
    fig = go.Figure()
    for depth, probs, answer, name, colour in (
            (comp.depth_left, comp.probs_left, comp.answer_left, left_name, theme.PALETTE[0]),
            (comp.depth_right, comp.probs_right, comp.answer_right, right_name, theme.ACCENT)):
        layers = np.arange(len(depth))
        label = f"{name}: “{html.escape(answer)}”"
        fig.add_trace(go.Scatter(x=depth, y=probs, mode="lines+markers", name=label, line_color=colour,
                                 customdata=layers,
                                 hovertemplate=label + "<br>layer %{customdata}<br>p = %{y:.4f}<extra></extra>"))
    fig.update_layout(xaxis_title=depth_label, yaxis_title=prob_label, yaxis_range=[0, 1],
                      legend=dict(orientation="h", y=1.1))
    return theme.apply(fig, presenter, height=380)
