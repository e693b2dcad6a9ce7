"""Before/after bars for a next-token distribution that changed."""
from __future__ import annotations

import html
from typing import Sequence

import plotly.graph_objects as go

from explainer.analysis.compare import DistributionChange
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
