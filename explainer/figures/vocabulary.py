"""Figures for the Embeddings page: vocabulary map, neighbours, word pairs, analogy, vectors.

Builders are pure (result → Figure). Every visible string arrives as an argument with an
English default, so pages pass translated labels. Token labels are HTML-escaped because
plotly treats ``<...>`` in hover text as markup (``<0xE7>``, ``<|endoftext|>``).
"""
from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.analysis.vocab_map import VocabMap
from explainer.analysis.vocabulary import Analogy, Neighbours, PairSimilarity
from explainer.figures import theme


def _esc(labels: Sequence[str]) -> list[str]:
    return [html.escape(s, quote=False) for s in labels]


def vocab_map_figure(vmap: VocabMap, labels: Sequence[str], highlight_ids: Sequence[int] = (),
                     secondary_ids: Sequence[int] = (), title: str = "",
                     all_name: str = "all tokens", highlight_name: str = "your prompt",
                     secondary_name: str = "neighbours", id_label: str = "id",
                     presenter: bool = False, height: int = 620) -> go.Figure:
    """All V tokens as one muted WebGL scatter, plus highlighted groups on top.

    Coordinates go in as float32 arrays (plotly sends them as compact binary) and the
    hover shows ``label`` and ``id``; ids travel as int32 customdata.
    """
    xy = np.asarray(vmap.coords, dtype=np.float32)                 # (V, 2)
    n = xy.shape[0]
    shown = vmap.shown_ids.astype(np.int32)                        # a big vocabulary draws its laid-out part
    names = _esc(list(labels)[:n])
    hover = f"%{{text}}<br>{id_label} %{{customdata}}<extra></extra>"
    fig = go.Figure(go.Scattergl(
        x=xy[shown, 0], y=xy[shown, 1], mode="markers", name=all_name, text=[names[i] for i in shown],
        customdata=shown, hovertemplate=hover,
        marker=dict(color=theme.MUTED, size=3 if not presenter else 4, opacity=0.45)))
    groups = [(secondary_ids, secondary_name, theme.PALETTE[0], 8),
              (highlight_ids, highlight_name, theme.ACCENT, 11)]
    for ids, name, colour, size in groups:
        ids = np.array(list(dict.fromkeys(int(i) for i in ids if 0 <= int(i) < n)), dtype=np.int32)
        if not len(ids):
            continue
        fig.add_trace(go.Scattergl(
            x=xy[ids, 0], y=xy[ids, 1], mode="markers+text", name=name,
            text=[names[i] for i in ids], customdata=ids, hovertemplate=hover,
            textposition="top center", textfont=dict(color=colour),
            marker=dict(color=colour, size=size, line=dict(color="white", width=1))))
    fig.update_layout(title=title, legend=dict(orientation="h", y=-0.05), dragmode="zoom",
                      xaxis=dict(showticklabels=False, zeroline=False, title=None),
                      yaxis=dict(showticklabels=False, zeroline=False, title=None,
                                 scaleanchor="x", scaleratio=1))
    return theme.apply(fig, presenter=presenter, height=height)


def _bars(labels: Sequence[str], ids: Sequence[int], values: Sequence[float],
          colours: Sequence[str], value_label: str, id_label: str) -> go.Bar:
    """Horizontal bars, one row per token in order (duplicate labels stay separate rows)."""
    rows = list(range(len(values)))
    custom = np.array([[lab, str(i)] for lab, i in zip(_esc(labels), ids)], dtype=object)
    return go.Bar(x=list(values), y=rows, orientation="h", marker_color=list(colours),
                  customdata=custom.reshape(len(rows), 2) if rows else None,
                  text=[f"{v:.3f}" for v in values], textposition="auto",
                  hovertemplate=("%{customdata[0]}<br>" + id_label + " %{customdata[1]}<br>"
                                 + value_label + " = %{x:.4f}<extra></extra>"))


def _rows_axis(fig: go.Figure, labels: Sequence[str], row: int | None = None,
               col: int | None = None) -> None:
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(labels))),
                     ticktext=_esc(labels), autorange="reversed", row=row, col=col)


def neighbours_figure(neighbours: Neighbours, title: str = "",
                      value_label: str = "cosine similarity", id_label: str = "id",
                      presenter: bool = False, height: int | None = None) -> go.Figure:
    """The k nearest tokens as horizontal bars, nearest on top."""
    n = len(neighbours.ids)
    fig = go.Figure(_bars(neighbours.labels, neighbours.ids, neighbours.similarities,
                          [theme.PALETTE[0]] * n, value_label, id_label))
    _rows_axis(fig, neighbours.labels)
    fig.update_layout(title=title, xaxis_title=value_label, showlegend=False)
    return theme.apply(fig, presenter=presenter, height=height or 120 + 28 * n)


def pair_similarity_figure(pairs: Sequence[PairSimilarity], title: str = "",
                           value_label: str = "cosine similarity",
                           split_note: str = "split into several tokens (mean vector)",
                           presenter: bool = False, height: int | None = None) -> go.Figure:
    """One bar per word pair; pairs with a split word are hatched and say so on hover."""
    names = [f"{p.first.word} · {p.second.word}" for p in pairs]
    split = [p.first.split or p.second.split for p in pairs]
    detail = [html.escape(f"{'+'.join(p.first.pieces)} · {'+'.join(p.second.pieces)}",
                          quote=False)
              + (f"<br><i>{html.escape(split_note)}</i>" if s else "")
              for p, s in zip(pairs, split)]
    sims = [p.similarity for p in pairs]
    fig = go.Figure(go.Bar(
        x=list(range(len(pairs))), y=sims, customdata=_esc(names), hovertext=detail,
        marker=dict(color=[theme.PALETTE[0]] * len(pairs),
                    pattern=dict(shape=["/" if s else "" for s in split])),
        text=[f"{v:.3f}" for v in sims], textposition="auto",
        hovertemplate=("%{customdata}<br>%{hovertext}<br>" + value_label
                       + " = %{y:.4f}<extra></extra>")))
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(pairs))), ticktext=_esc(names))
    fig.update_layout(title=title, yaxis_title=value_label, showlegend=False)
    return theme.apply(fig, presenter=presenter, height=height or 380)


def analogy_figure(result: Analogy, excluded_title: str = "inputs excluded",
                   included_title: str = "inputs included", title: str = "",
                   value_label: str = "cosine similarity", id_label: str = "id",
                   presenter: bool = False, height: int | None = None) -> go.Figure:
    """Two panels: the usual top-k (inputs left out) and the honest top-k (inputs allowed).

    Input tokens are muted, the expected answer (if any) is ACCENT, others PALETTE[0].
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=(excluded_title, included_title),
                        horizontal_spacing=0.18)
    inputs = set(result.input_ids)
    for col, nb in ((1, result.excluded), (2, result.included)):
        colours = [theme.MUTED if i in inputs else theme.ACCENT
                   if i in result.expected_ids else theme.PALETTE[0] for i in nb.ids]
        fig.add_trace(_bars(nb.labels, nb.ids, nb.similarities, colours, value_label,
                            id_label), row=1, col=col)
        _rows_axis(fig, nb.labels, row=1, col=col)
        fig.update_xaxes(title_text=value_label, row=1, col=col)
    k = max(len(result.excluded.ids), len(result.included.ids))
    fig.update_layout(title=title or result.excluded.query, showlegend=False)
    return theme.apply(fig, presenter=presenter, height=height or 140 + 28 * k)


def token_vectors_heatmap(vectors: np.ndarray | Any, labels: Sequence[str], title: str = "",
                          token_label: str = "token", dim_label: str = "dimension",
                          value_label: str = "value", presenter: bool = False,
                          height: int | None = None, first_index: int = 0) -> go.Figure:
    """The prompt's token vectors (T, d) as rows; diverging colours centred on 0.

    Rows are named ``position: token``; ``first_index`` is the position of row 0 when
    the rows are a window of a longer prompt.
    """
    if hasattr(vectors, "detach"):                                 # a torch tensor
        vectors = vectors.detach().float().cpu().numpy()
    z = np.asarray(vectors, dtype=np.float32)                      # (T, d)
    rows = [f"{first_index + i}: {lab}" for i, lab in enumerate(_esc(labels))]  # unique
    bound = float(np.abs(z).max()) if z.size else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, y=rows, x=np.arange(z.shape[1], dtype=np.int32), colorscale=theme.DIVERGING,
        zmid=0.0, zmin=-bound, zmax=bound, colorbar=dict(title=value_label),
        hovertemplate=(f"{token_label} %{{y}}<br>{dim_label} %{{x}}<br>{value_label} = "
                       "%{z}<extra></extra>")))
    fig.update_layout(title=title, xaxis_title=dim_label)
    fig.update_yaxes(autorange="reversed", type="category")
    return theme.apply(fig, presenter=presenter, height=height or 160 + 22 * len(rows))
