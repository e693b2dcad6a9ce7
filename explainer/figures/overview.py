"""Figures for the Overview page: the journey diagram, parameters by component, and scale.

Builders are ``build(result, view)``: visible strings come from ``view.t`` (the keys each
builder reads are listed in its docstring); user text is escaped for plotly, tokens are shown
by the one rule (explainer.tokens).
"""
from __future__ import annotations

import unicodedata

import plotly.graph_objects as go

from explainer.analysis.overview import Journey, ModelCard, Scale
from explainer.analysis.params import COMPONENTS
from explainer.figures import theme
from explainer.numbers import human
from explainer.tokens import for_plotly, plotly_text
from explainer.view import View

STAGES = ("text", "tokens", "vectors", "blocks", "final_norm", "logits", "softmax", "next_token")
# Box centres on a 100 × 60 canvas: the first four on the top row, the rest below.
_X = (12.5, 37.5, 62.5, 87.5)
_Y_TOP, _Y_BOTTOM, _W, _H = 44.0, 13.0, 21.0, 21.0
_FILL = {"blocks": "#fde2c4", "next_token": "#f9d0d0", "text": "#eeeeee"}
_DEFAULT_FILL = "#dbe8f5"


def _short(text: str, limit: int = 16) -> str:
    """At most ``limit`` columns of ``text`` (a wide character, e.g. Chinese, takes two), else cut with "…"."""
    text = " ".join(text.split())
    widths = [2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text]
    if sum(widths) <= limit:
        return text
    used, cut = 0, 0
    while cut < len(text) and used + widths[cut] <= limit - 1:
        used += widths[cut]
        cut += 1
    return text[:cut] + "…"


def journey_boxes(j: Journey, view: View) -> list[tuple[str, str, str, str]]:
    """(title, main line, detail line, hover) per stage, already escaped for plotly.

    Reads ``stage_<name>``, ``stage_<name>_main``, ``stage_<name>_detail`` and
    ``stage_<name>_hover`` for every name in :data:`STAGES`, plus ``stage_vectors_detail_learned``,
    ``stage_vectors_detail_scaled`` and ``stage_vectors_hover_scaled`` ({scale}) for scaled token vectors,
    and ``stage_blocks_hover_window`` ({local}, {window}) when some layers read only a window.
    """
    labels = view.t
    values = dict(n=j.n_tokens, d=j.d_model, layers=j.n_layers, heads=j.n_heads, d_mlp=j.d_mlp,
                  v=j.vocab_size, chars=j.n_chars, p=j.top_prob, local=j.n_local, window=j.window,
                  scale=f"{j.embed_scale or 1:.1f}",
                  text="“" + plotly_text(_short(j.text)) + "”", token=for_plotly(j.top_label))
    alternatives = "<br>".join(f"{for_plotly(lab)} {p:.2%}" for lab, p in zip(j.next_labels, j.next_probs))
    out = []
    for name in STAGES:
        detail_key = f"stage_{name}_detail" + ("_learned" if name == "vectors" and not j.rotary else "")
        if name == "vectors" and j.embed_scale and j.rotary:
            detail_key = "stage_vectors_detail_scaled"
        hover = labels[f"stage_{name}_hover"].format(**values)
        if name == "vectors" and j.embed_scale:
            hover += "<br>" + labels["stage_vectors_hover_scaled"].format(**values)
        if name == "blocks" and j.n_local:
            hover += "<br>" + labels["stage_blocks_hover_window"].format(**values)
        if name == "next_token":
            hover += "<br>" + alternatives
        out.append((labels[f"stage_{name}"].format(**values), labels[f"stage_{name}_main"].format(**values),
                    labels[detail_key].format(**values), hover))
    return out


def journey_figure(j: Journey, view: View) -> go.Figure:
    """The text → … → next token pipeline as boxes and arrows, with this prompt's live shapes."""
    presenter = view.presenter
    boxes = journey_boxes(j, view)
    centres = [(x, _Y_TOP) for x in _X] + [(x, _Y_BOTTOM) for x in _X]
    big, small = (20, 16) if presenter else (15, 12)
    fig = go.Figure()
    for name, (cx, cy), (title, main, detail, _) in zip(STAGES, centres, boxes):
        fig.add_shape(type="rect", x0=cx - _W / 2, x1=cx + _W / 2, y0=cy - _H / 2, y1=cy + _H / 2,
                      line=dict(color="#333333", width=2 if name == "next_token" else 1.2),
                      fillcolor=_FILL.get(name, _DEFAULT_FILL), layer="below")
        main_colour = theme.ACCENT if name == "next_token" else "#111111"
        fig.add_annotation(x=cx, y=cy + 6.5, text=f"<b>{title}</b>", showarrow=False, font=dict(size=big))
        fig.add_annotation(x=cx, y=cy + 1.5, text=main, showarrow=False,
                           font=dict(size=big + (6 if name == "next_token" else 0), color=main_colour))
        fig.add_annotation(x=cx, y=cy - 5, text=detail, showarrow=False, font=dict(size=small, color="#444444"))
    for i in (0, 1, 2, 4, 5, 6):                     # straight arrows along each row
        (x0, y), (x1, _) = centres[i], centres[i + 1]
        _arrow(fig, x0 + _W / 2, y, x1 - _W / 2 - 0.3, y)
    # The return path: from under the blocks, back to the left, down into the final norm.
    mid = (_Y_TOP + _Y_BOTTOM) / 2
    fig.add_shape(type="path", path=f"M {_X[3]},{_Y_TOP - _H / 2} L {_X[3]},{mid} L {_X[0]},{mid}",
                  line=dict(color="#333333", width=2))
    _arrow(fig, _X[0], mid, _X[0], _Y_BOTTOM + _H / 2 + 0.4)
    fig.add_annotation(x=_X[3] + _W / 2 - 3, y=_Y_TOP + _H / 2, text=f"<b>× {j.n_layers}</b>",
                       showarrow=False, bgcolor="#ffffff", bordercolor=theme.ACCENT, borderwidth=2, borderpad=3,
                       font=dict(size=big + 4, color=theme.ACCENT))
    fig.add_trace(go.Scatter(                        # invisible points that carry each box's hover
        x=[c[0] for c in centres], y=[c[1] for c in centres], mode="markers",
        marker=dict(size=90 if presenter else 70, opacity=0, symbol="square"),
        customdata=[b[3] for b in boxes], hovertemplate="%{customdata}<extra></extra>"))
    fig.update_xaxes(visible=False, range=[0, 100], fixedrange=True)
    fig.update_yaxes(visible=False, range=[1, 58], fixedrange=True)
    fig.update_layout(showlegend=False, dragmode=False)
    return theme.apply(fig, presenter, height=470)


def _arrow(fig: go.Figure, x0: float, y0: float, x1: float, y1: float) -> None:
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                       showarrow=True, arrowhead=2, arrowsize=1.3, arrowwidth=2, arrowcolor="#333333")


def parameters_figure(card: ModelCard, view: View) -> go.Figure:
    """Parameters by component as horizontal bars with count and share.

    Reads ``comp_<component>`` for each component, ``comp_head_tied``, ``params_title``,
    ``params_axis`` and ``params_hover`` (the word after the exact count, e.g. "parameters").
    """
    labels, presenter = view.t, view.presenter
    counts = card.parameters.by_component
    total = max(card.parameters.total, 1)
    names = [labels["comp_head_tied"] if c == "head" and card.tied_head else labels[f"comp_{c}"]
             for c in COMPONENTS]
    values = [counts[c] for c in COMPONENTS]
    fig = go.Figure(go.Bar(
        x=values, y=names, orientation="h", marker_color=theme.PALETTE[:len(values)],
        text=[f"{human(v)} · {v / total:.0%}" for v in values], textposition="outside", cliponaxis=False,
        customdata=[v / total for v in values],
        hovertemplate="%{y}<br>%{x:,} " + labels["params_hover"] + " (%{customdata:.2%})<extra></extra>"))
    fig.update_layout(title=labels["params_title"], showlegend=False,
                      xaxis=dict(title=labels["params_axis"], range=[0, max(values) * 1.45]),
                      yaxis=dict(autorange="reversed"))
    return theme.apply(fig, presenter, height=300)


def scale_figure(sc: Scale, view: View) -> go.Figure:
    """Total parameters on a log axis, this model highlighted. Reads ``scale_title``,
    ``scale_axis``, ``params_hover`` and ``scale_this`` (a suffix for the loaded model)."""
    labels, presenter = view.t, view.presenter
    names = [plotly_text(n) + (f" ({labels['scale_this']})" if i == sc.this_index else "")
             for i, n in enumerate(sc.names)]
    colours = [theme.ACCENT if i == sc.this_index else theme.MUTED for i in range(len(sc.names))]
    fig = go.Figure(go.Bar(
        x=list(sc.totals), y=names, orientation="h", marker_color=colours,
        text=[human(v) for v in sc.totals], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}<br>%{x:,} " + labels["params_hover"] + "<extra></extra>"))
    fig.update_layout(title=labels["scale_title"], showlegend=False,
                      xaxis=dict(title=labels["scale_axis"], type="log",
                                 range=[5, 12.4], tickvals=[10.0 ** k for k in range(5, 13)],
                                 ticktext=[human(10.0 ** k) for k in range(5, 13)]))
    return theme.apply(fig, presenter, height=300)
