"""Token chips (escaped HTML) and a chart of bytes per token."""
from __future__ import annotations

import html

import plotly.graph_objects as go

from explainer.analysis.tokens import TokenStats
from explainer.figures import theme


def chip_colour(index: int) -> str:
    """A light background colour for the i-th chip (cycled)."""
    light = ["#cfe2f3", "#fde2c4", "#d5ecd4", "#e4d7ef", "#f4d4d4", "#d9eef2", "#f3efc4", "#e6e6e6"]
    return light[index % len(light)]


def token_chips_html(stats: TokenStats, hover: str = "id {id} · bytes {bytes}") -> str:
    """Every token as a coloured chip with its id below; all user text is HTML-escaped."""
    chips = []
    for p in stats.pieces:
        title = hover.format(id=p.token_id, bytes=p.hex_bytes)
        if p.group and not p.whole:
            title += f" · “{p.group}”"
        chips.append(
            f'<span class="tok" style="background:{chip_colour(p.index)}" title="{html.escape(title)}">'
            f"{html.escape(p.label)}<sub>{p.token_id}</sub></span>")
    return '<div class="tok-row">' + "".join(chips) + "</div>"


def bytes_per_token_figure(stats: TokenStats, title: str = "Bytes per token", x_title: str = "token",
                           y_title: str = "bytes", presenter: bool = False) -> go.Figure:
    labels = [f"{p.index}:{p.label}" for p in stats.pieces]
    sizes = [len(p.hex_bytes.split()) for p in stats.pieces]
    fig = go.Figure(go.Bar(
        x=labels, y=sizes, marker_color=[chip_colour(p.index) for p in stats.pieces],
        marker_line_color="#555", marker_line_width=0.5,
        customdata=[[p.token_id, p.hex_bytes] for p in stats.pieces],
        hovertemplate="%{x}<br>id %{customdata[0]}<br>%{y} bytes: %{customdata[1]}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, showlegend=False)
    return theme.apply(fig, presenter, height=320)
