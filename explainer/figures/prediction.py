"""Next-token charts: the reshaped distribution, the top-p curve, trained vs untrained.

Builders are ``build(result, view)`` (words from ``view.t``, tokens by the one rule). A token
that is only part of a character (a byte of 猫 from a byte-level tokenizer) says so on hover.
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from explainer.analysis.prediction import Distribution, NucleusCurve, TrainedVsUntrained
from explainer.figures import theme
from explainer.tokens import for_plotly, part_words, plotly_text
from explainer.view import View

KEPT = "#1f77b4"
REMOVED = "#c9ced6"
BEFORE = "#f4a259"


def _unique(labels: Sequence[str]) -> list[str]:
    """Category labels must be unique: add a rank suffix to repeats."""
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    return out


def part_notes(pieces: Sequence[bytes], context: bytes, view: View) -> list[str]:
    """For each predicted token, "<br>" + what part of a character it is (or "" for whole text)."""
    notes = [part_words(p, context, view.common) for p in pieces]
    return [f"<br><i>{plotly_text(n)}</i>" if n else "" for n in notes]


def distribution_figure(dist: Distribution, view: View) -> go.Figure:
    """Top tokens, before (temperature 1) and after the settings; kept and removed coloured apart.

    Reads before, after, kept, removed, axis_prob, title_dist (optional).
    """
    t = view.t
    ys = _unique([for_plotly(s) for s in dist.top_labels])
    kept = [a > 0 for a in dist.top_adjusted]
    notes = part_notes(dist.top_bytes, dist.context, view) if dist.top_bytes else [""] * len(ys)
    custom = [[dist.top_ids[i], dist.top_probs[i], dist.top_adjusted[i], i + 1, t["kept"] if kept[i] else t["removed"],
               notes[i]] for i in range(len(ys))]
    hover = ("%{y} · id %{customdata[0]} · #%{customdata[3]}%{customdata[5]}<br>" + t["before"]
             + ": %{customdata[1]:.4%}<br>" + t["after"] + ": %{customdata[2]:.4%} (%{customdata[4]})<extra></extra>")
    data = [dict(type="bar", y=ys, x=list(dist.top_probs), orientation="h", name=t["before"],
                 marker=dict(color=BEFORE), customdata=custom, hovertemplate=hover),
            dict(type="bar", y=ys, x=list(dist.top_adjusted), orientation="h", name=t["after"],
                 marker=dict(color=[KEPT if k else REMOVED for k in kept]), customdata=custom, hovertemplate=hover,
                 text=[f"{a:.1%}" if k else "✕" for a, k in zip(dist.top_adjusted, kept)], textposition="outside",
                 cliponaxis=False)]
    layout = dict(barmode="group", xaxis=dict(title=dict(text=t["axis_prob"]), tickformat=".0%"),
                  yaxis=dict(autorange="reversed", type="category"), title=dict(text=t.get("title_dist", "")),
                  legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
                  margin=dict(t=110 if view.presenter else 85))
    return theme.figure(data, layout, view.presenter, height=max(320, 30 * len(ys) + 130))


def nucleus_figure(curve: NucleusCurve, view: View) -> go.Figure:
    """Running total of probability by rank, the top-p line, kept and removed tokens coloured apart.

    Reads cumulative, prob, axis_rank, title_nucleus (optional).
    """
    t = view.t
    ranks = list(range(1, len(curve.ids) + 1))
    notes = part_notes(curve.pieces, curve.context, view) if curve.pieces else [""] * len(ranks)
    custom = [[for_plotly(lab), i, p, c, n]
              for lab, i, p, c, n in zip(curve.labels, curve.ids, curve.probs, curve.cumulative, notes)]
    data = [dict(type="scatter", x=ranks, y=list(curve.cumulative), mode="lines+markers",
                 line=dict(color=theme.MUTED, width=1.5), customdata=custom, name=t["cumulative"],
                 marker=dict(color=[KEPT if k else REMOVED for k in curve.kept], size=8,
                             line=dict(color="#555", width=0.5)),
                 hovertemplate=("#%{x} %{customdata[0]} · id %{customdata[1]}%{customdata[4]}<br>" + t["prob"]
                                + ": %{customdata[2]:.4%}<br>" + t["cumulative"]
                                + ": %{customdata[3]:.4%}<extra></extra>"))]
    shapes, notes_ = [], []
    if curve.top_p is not None and curve.top_p < 1:
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, y0=curve.top_p, y1=curve.top_p,
                           line=dict(color=theme.ACCENT, dash="dash")))
        notes_.append(dict(text=f"top-p = {curve.top_p:.2f}", xref="paper", x=1, y=curve.top_p, xanchor="right",
                           yanchor="top", showarrow=False))
    layout = dict(xaxis=dict(title=dict(text=t["axis_rank"]), type="log", tickvals=[1, 2, 5, 10, 20, 50, 100]),
                  yaxis=dict(title=dict(text=t["cumulative"]), tickformat=".0%", range=[0, 1.05]),
                  title=dict(text=t.get("title_nucleus", "")), showlegend=False, shapes=shapes, annotations=notes_)
    return theme.figure(data, layout, view.presenter, height=360)


def compare_figure(both: TrainedVsUntrained, view: View) -> go.Figure:
    """Side by side: the trained model's top tokens and the untrained model's (each its own x scale).

    Reads trained ({bits}), untrained ({bits}), prob, axis_prob. Laid out by hand (two x domains).
    """
    t = view.t
    trained, untrained = both.trained, both.untrained
    titles = (t["trained"].format(bits=trained.entropy_bits), t["untrained"].format(bits=untrained.entropy_bits))
    data, layout, notes = [], {}, []
    for k, (dist, colour) in enumerate(((trained, KEPT), (untrained, theme.MUTED))):
        suffix = "" if k == 0 else "2"
        x0, x1 = (0.0, 0.41) if k == 0 else (0.59, 1.0)
        ys = _unique([for_plotly(s) for s in dist.top_labels])
        probs = list(dist.top_probs[:len(ys)])
        data.append(dict(type="bar", y=ys, x=probs, orientation="h", marker=dict(color=colour),
                         xaxis="x" + suffix, yaxis="y" + suffix, customdata=[[i] for i in dist.top_ids[:len(ys)]],
                         showlegend=False, cliponaxis=False, text=[f"{p:.2%}" for p in probs], textposition="outside",
                         hovertemplate="%{y} · id %{customdata[0]}<br>" + t["prob"] + ": %{x:.4%}<extra></extra>"))
        layout["xaxis" + suffix] = dict(domain=[x0, x1], anchor="y" + suffix, title=dict(text=t["axis_prob"]),
                                        tickformat=".0%" if max(probs, default=0) >= 0.05 else ".2%")
        layout["yaxis" + suffix] = dict(anchor="x" + suffix, autorange="reversed", type="category")
        notes.append(dict(text=titles[k], x=(x0 + x1) / 2, y=1.0, xref="paper", yref="paper", xanchor="center",
                          yanchor="bottom", showarrow=False, font=dict(size=16)))
    layout.update(annotations=notes, margin=dict(t=40))
    return theme.figure(data, layout, view.presenter, height=max(320, 26 * len(trained.top_labels) + 110))
