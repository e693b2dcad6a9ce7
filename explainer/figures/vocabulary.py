"""Figures for the Embeddings page: vocabulary map, neighbours, word pairs, analogy, vectors.

Builders are ``build(result, view)``: words from the page's texts (``view.t``), tokens shown by
the one rule (:mod:`explainer.tokens`), user words escaped for plotly.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.analysis.vocab_map import MapHighlights
from explainer.analysis.vocabulary import Analogy, Neighbours, PairSimilarities, PromptVectors
from explainer.figures import theme
from explainer.tokens import for_plotly, plotly_text
from explainer.tokens import shown as shown_label
from explainer.view import View

ID = "id"


def _shown(labels: Sequence[str]) -> list[str]:
    return [for_plotly(s) for s in labels]


def vocab_map_figure(h: MapHighlights, view: View, height: int = 620) -> go.Figure:
    """All V tokens as one muted WebGL scatter, plus the prompt's tokens and the neighbours on top.

    Coordinates go in as float32 arrays (plotly sends them as compact binary) and the hover
    shows label and id; ids travel as int32 customdata. Reads ``map_chart``, ``map_all``,
    ``map_prompt``, ``map_neighbours`` ({word}). The hover is HTML, so it gets escaped labels;
    the labels drawn beside the points are WebGL glyphs, never markup, so they get the plain
    shown form (an escaped ``<bos>`` would be drawn as ``&lt;bos&gt;``).
    """
    t = view.t
    xy = np.asarray(h.map.coords, dtype=np.float32)                # (V, 2)
    n = xy.shape[0]
    shown = h.map.shown_ids.astype(np.int32)                       # a big vocabulary draws its laid-out part
    names = _shown(list(h.labels)[:n])
    hover = f"%{{hovertext}}<br>{ID} %{{customdata}}<extra></extra>"
    fig = go.Figure(go.Scattergl(
        x=xy[shown, 0], y=xy[shown, 1], mode="markers", name=t["map_all"], hovertext=[names[i] for i in shown],
        customdata=shown, hovertemplate=hover,
        marker=dict(color=theme.MUTED, size=3 if not view.presenter else 4, opacity=0.45)))
    groups = [(h.neighbour_ids, t["map_neighbours"].format(word=plotly_text(h.word)), theme.PALETTE[0], 8),
              (h.prompt_ids, t["map_prompt"], theme.ACCENT, 11)]
    for ids, name, colour, size in groups:
        ids = np.array(list(dict.fromkeys(int(i) for i in ids if 0 <= int(i) < n)), dtype=np.int32)
        if not len(ids):
            continue
        fig.add_trace(go.Scattergl(
            x=xy[ids, 0], y=xy[ids, 1], mode="markers+text", name=name,
            text=[shown_label(h.labels[i]) for i in ids], hovertext=[names[i] for i in ids], customdata=ids,
            hovertemplate=hover,
            textposition="top center", textfont=dict(color=colour),
            marker=dict(color=colour, size=size, line=dict(color="white", width=1))))
    fig.update_layout(title=t["map_chart"], legend=dict(orientation="h", y=-0.05), dragmode="zoom",
                      xaxis=dict(showticklabels=False, zeroline=False, title=None),
                      yaxis=dict(showticklabels=False, zeroline=False, title=None,
                                 scaleanchor="x", scaleratio=1))
    return theme.apply(fig, presenter=view.presenter, height=height)


def _bars(labels: Sequence[str], ids: Sequence[int], values: Sequence[float],
          colours: Sequence[str], value_label: str) -> go.Bar:
    """Horizontal bars, one row per token in order (duplicate labels stay separate rows)."""
    rows = list(range(len(values)))
    custom = np.array([[lab, str(i)] for lab, i in zip(_shown(labels), ids)], dtype=object)
    return go.Bar(x=list(values), y=rows, orientation="h", marker_color=list(colours),
                  customdata=custom.reshape(len(rows), 2) if rows else None,
                  text=[f"{v:.3f}" for v in values], textposition="auto",
                  hovertemplate=("%{customdata[0]}<br>" + ID + " %{customdata[1]}<br>"
                                 + value_label + " = %{x:.4f}<extra></extra>"))


def _rows_axis(fig: go.Figure, labels: Sequence[str], row: int | None = None,
               col: int | None = None) -> None:
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(labels))),
                     ticktext=_shown(labels), autorange="reversed", row=row, col=col)


def neighbours_figure(nb: Neighbours, view: View) -> go.Figure:
    """The k nearest tokens as horizontal bars, nearest on top. Reads ``neighbours_chart`` ({word}), ``cosine``."""
    n = len(nb.ids)
    fig = go.Figure(_bars(nb.labels, nb.ids, nb.similarities, [theme.PALETTE[0]] * n, view.t["cosine"]))
    _rows_axis(fig, nb.labels)
    fig.update_layout(title=view.t["neighbours_chart"].format(word=plotly_text(nb.query)),
                      xaxis_title=view.t["cosine"], showlegend=False)
    return theme.apply(fig, presenter=view.presenter, height=120 + 28 * n)


def pair_similarity_figure(pairs: PairSimilarities, view: View) -> go.Figure:
    """One bar per word pair; pairs with a split word are hatched and say so on hover.

    Reads ``pairs_chart``, ``cosine``, ``split_hover``.
    """
    value_label = view.t["cosine"]
    names = [plotly_text(f"{p.first.word} · {p.second.word}") for p in pairs]
    split = [p.first.split or p.second.split for p in pairs]
    detail = [" + ".join(_shown(p.first.pieces)) + " · " + " + ".join(_shown(p.second.pieces))
              + (f"<br><i>{plotly_text(view.t['split_hover'])}</i>" if s else "")
              for p, s in zip(pairs, split)]
    sims = [p.similarity for p in pairs]
    fig = go.Figure(go.Bar(
        x=list(range(len(pairs))), y=sims, customdata=names, hovertext=detail,
        marker=dict(color=[theme.PALETTE[0]] * len(pairs),
                    pattern=dict(shape=["/" if s else "" for s in split])),
        text=[f"{v:.3f}" for v in sims], textposition="auto",
        hovertemplate=("%{customdata}<br>%{hovertext}<br>" + value_label
                       + " = %{y:.4f}<extra></extra>")))
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(pairs))), ticktext=names)
    fig.update_layout(title=view.t["pairs_chart"], yaxis_title=value_label, showlegend=False)
    return theme.apply(fig, presenter=view.presenter, height=380)


def analogy_figure(result: Analogy, view: View) -> go.Figure:
    """Two panels: the usual top-k (inputs left out) and the honest top-k (inputs allowed).

    Input tokens are muted, the expected answer (if any) is ACCENT, others PALETTE[0].
    Reads ``excluded``, ``included``, ``cosine``; the title is the query (``a − b + c``).
    """
    value_label = view.t["cosine"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(view.t["excluded"], view.t["included"]),
                        horizontal_spacing=0.18)
    inputs = set(result.input_ids)
    for col, nb in ((1, result.excluded), (2, result.included)):
        colours = [theme.MUTED if i in inputs else theme.ACCENT
                   if i in result.expected_ids else theme.PALETTE[0] for i in nb.ids]
        fig.add_trace(_bars(nb.labels, nb.ids, nb.similarities, colours, value_label), row=1, col=col)
        _rows_axis(fig, nb.labels, row=1, col=col)
        fig.update_xaxes(title_text=value_label, row=1, col=col)
    k = max(len(result.excluded.ids), len(result.included.ids))
    fig.update_layout(title=plotly_text(result.excluded.query), showlegend=False)
    return theme.apply(fig, presenter=view.presenter, height=140 + 28 * k)


def token_vectors_heatmap(pv: PromptVectors, view: View) -> go.Figure:
    """The prompt's token vectors (W, d) as rows; diverging colours centred on 0.

    Rows are named ``position: token``. Reads ``vectors_chart``, ``axis_token``, ``axis_dim``, ``axis_value``.
    """
    t = view.t
    z = np.asarray(pv.vectors, dtype=np.float32)                   # (W, d)
    rows = [f"{pv.start + i}: {lab}" for i, lab in enumerate(_shown(pv.labels))]  # unique
    bound = float(np.abs(z).max()) if z.size else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, y=rows, x=np.arange(z.shape[1], dtype=np.int32), colorscale=theme.DIVERGING,
        zmid=0.0, zmin=-bound, zmax=bound, colorbar=dict(title=t["axis_value"]),
        hovertemplate=(f"{t['axis_token']} %{{y}}<br>{t['axis_dim']} %{{x}}<br>{t['axis_value']} = "
                       "%{z}<extra></extra>")))
    fig.update_layout(title=t["vectors_chart"], xaxis_title=t["axis_dim"])
    fig.update_yaxes(autorange="reversed", type="category")
    return theme.apply(fig, presenter=view.presenter, height=160 + 22 * len(rows))
