"""Token chips (escaped HTML, split characters spanning their chips) and a chart of bytes per token."""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

import plotly.graph_objects as go

from explainer import tokens
from explainer.analysis.tokens import TokenStats
from explainer.figures import theme
from explainer.tokens import CharGroup
from explainer.view import View

_GROUP = ("display:inline-flex;flex-direction:column;margin:2px 1px;padding:0 1px;"
          "border:1px solid #8886;border-radius:6px;vertical-align:bottom")
_GROUP_TEXT = "text-align:center;font-weight:600;line-height:1.6;border-bottom:1px dashed #888"


def chip_colour(index: int) -> str:
    """A light background colour for the i-th chip (cycled)."""
    light = ["#cfe2f3", "#fde2c4", "#d5ecd4", "#e4d7ef", "#f4d4d4", "#d9eef2", "#f3efc4", "#e6e6e6"]
    return light[index % len(light)]


@dataclass(frozen=True)
class Chip:
    """One token as a chip: its label, a small number under it, its hover and its look."""

    label: str                       # the token's legible label (shown by the one rule)
    data: bytes                      # its bytes (for the hover of a character it helps spell)
    sub: str
    title: str
    background: str
    border: str = "1px solid #0002"

    def html(self) -> str:
        return (f'<span class="tok" style="background:{self.background};border:{self.border}" '
                f'title="{html.escape(self.title)}">{tokens.for_html(self.label)}<sub>{html.escape(self.sub)}</sub></span>')


def chip_row(chips: Sequence[Chip], groups: Sequence[CharGroup], view: View, before: str = "",
             wrap: bool = False) -> str:
    """Chips in a row; tokens that spell characters together sit under that character.

    ``before``: HTML put first in the row (already escaped). Hovering a character shows the
    bytes of all its tokens (``common.char_group_hover``).
    """
    starts = {g.start: g for g in groups if g.complete}
    parts, i = [before] if before else [], 0
    while i < len(chips):
        group = starts.get(i)
        if group is None:
            parts.append(chips[i].html())
            i += 1
            continue
        inner = chips[group.start:group.stop]
        hover = view.common["char_group_hover"].format(
            text=tokens.shown(group.text), bytes=tokens.hex_bytes(b"".join(c.data for c in inner)), n=len(inner))
        parts.append(f'<span class="tok-char" style="{_GROUP}" title="{html.escape(hover)}">'
                     f'<span style="{_GROUP_TEXT}">{tokens.for_html(group.text)}</span>'
                     f'<span style="display:flex">{"".join(c.html() for c in inner)}</span></span>')
        i = group.stop
    style = "align-items:flex-end" + (";white-space:pre-wrap" if wrap else "")   # chips on one baseline
    return f'<div class="tok-row" style="{style}">' + "".join(parts) + "</div>"


def token_chips_html(stats: TokenStats, view: View) -> str:
    """Every token as a coloured chip with its id below; characters split over tokens span their chips.

    Reads ``chip_hover`` ({id}, {bytes}); all user text is HTML-escaped.
    """
    chips = []
    for p in stats.pieces:
        title = view.t["chip_hover"].format(id=p.token_id, bytes=p.hex_bytes)
        if p.group and not p.whole:
            title += f" · “{tokens.shown(p.group)}”"
        chips.append(Chip(p.label, p.data, str(p.token_id), title, chip_colour(p.index)))
    return chip_row(chips, stats.groups, view)


def bytes_per_token_figure(stats: TokenStats, view: View) -> go.Figure:
    """Bars of how many bytes each token stands for. Reads ``bytes_title``, ``axis_token``, ``axis_bytes``."""
    labels = tokens.plotly_axis([p.label for p in stats.pieces])
    sizes = [len(p.hex_bytes.split()) for p in stats.pieces]
    fig = go.Figure(go.Bar(
        x=labels, y=sizes, marker_color=[chip_colour(p.index) for p in stats.pieces],
        marker_line_color="#555", marker_line_width=0.5,
        customdata=[[p.token_id, p.hex_bytes] for p in stats.pieces],
        hovertemplate="%{x}<br>id %{customdata[0]}<br>%{y} " + view.t["axis_bytes"] + ": %{customdata[1]}<extra></extra>"))
    fig.update_layout(title=view.t["bytes_title"], xaxis_title=view.t["axis_token"],
                      yaxis_title=view.t["axis_bytes"], showlegend=False)
    return theme.apply(fig, view.presenter, height=320)
