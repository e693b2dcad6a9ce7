"""Chart text for a projector: nothing under 18 px, axis text black (explainer.figures.projector)."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.figures import theme
from explainer.figures.projector import INK, MIN_PX, readable


def _small_figure() -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("left", "right"))       # subplot titles: 16 px
    fig.add_trace(go.Heatmap(z=[[0.1, 0.9], [0.5, 0.2]], colorbar=dict(tickfont_size=10)), row=1, col=1)
    fig.add_trace(go.Scatter(x=[1, 2, 3], y=[1, 100, 10_000], name="curve",
                             hoverlabel=dict(font_size=11)), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_xaxes(tickfont_size=9)
    fig.add_annotation(text="note", x=1, y=1, font=dict(size=10))
    fig.add_annotation(text="accent", x=2, y=2, font=dict(size=30, color="#d62728"))
    return fig


def test_every_text_reaches_the_floor_and_axis_text_turns_black():
    fig = readable(theme.apply(_small_figure(), presenter=False))
    layout = fig.layout
    assert layout.font.size >= MIN_PX and layout.hoverlabel.font.size >= MIN_PX
    assert layout.legend.font.size >= MIN_PX
    for axis in list(fig.select_xaxes()) + list(fig.select_yaxes()):
        assert axis.tickfont.size >= MIN_PX and axis.tickfont.color == INK, axis.plotly_name
        assert axis.title.font.size >= MIN_PX
    log_axis = fig.layout.yaxis2
    assert log_axis.tickfont.size * 0.75 >= MIN_PX            # Plotly draws the in-between log labels at 75 %
    assert all(a.font.size >= MIN_PX for a in layout.annotations)
    assert fig.data[0].colorbar.tickfont.size >= MIN_PX
    assert fig.data[1].hoverlabel.font.size >= MIN_PX


def test_larger_sizes_and_accent_colours_are_kept():
    fig = readable(_small_figure())
    accent = [a for a in fig.layout.annotations if a.text == "accent"][0]
    assert accent.font.size == 30 and accent.font.color == "#d62728"
    plain = [a for a in fig.layout.annotations if a.text == "note"][0]
    assert plain.font.color == INK


def test_a_shared_colour_axis_gets_readable_ticks():
    fig = go.Figure(go.Heatmap(z=[[1, 2], [3, 4]], coloraxis="coloraxis"))
    fig.update_layout(coloraxis_colorbar_tickfont_size=8)
    assert readable(fig).layout.coloraxis.colorbar.tickfont.size == MIN_PX


def test_the_pass_changes_sizes_only_where_they_are_small():
    fig = theme.apply(go.Figure(go.Bar(x=["a"], y=[1])), presenter=True)
    before = fig.layout.xaxis.tickfont.size
    assert readable(fig).layout.xaxis.tickfont.size == max(before, MIN_PX)
    assert fig.data[0].y == (1,)                              # the data is untouched


def test_values_printed_on_bars_reach_the_floor():
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], text=["96.4%", "1.9%"], textposition="outside"))
    readable(fig)
    assert fig.data[0].textfont.size >= MIN_PX
