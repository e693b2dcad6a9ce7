"""Learning views: loss curves, probe predictions, attention before/after, n-gram and objective comparisons.

Builders are ``build(result, view)`` over the results of ``explainer.learning.results``; texts
come from ``view.t`` (the page's TOML), so every label follows the language. The ``*_rows``
helpers shape the page's on-screen tables (translated headers).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.figures import theme
from explainer.learning.ngram import NGramModel, UnseenContinuation
from explainer.learning.results import (AttentionBeforeAfter, FillTheBlank, HeldoutScores, LossCurves, Masks,
                                        ModelsOnProbes, ObjectiveLosses, ProbesBeforeAfter)
from explainer.learning.tiny import TokenProb
from explainer.learning.trainer import Checkpoint
from explainer.tokens import for_plotly, plotly_axis, plotly_text
from explainer.view import View

TRAIN = "#9ecae1"      # raw per-step training loss (noisy, light)
SMOOTH = theme.PALETTE[0]
HELDOUT = theme.PALETTE[1]
SERIES = [theme.PALETTE[i] for i in (4, 2, 6, 0)]  # unigram, bigram, trigram, neural
BEFORE, AFTER = theme.MUTED, theme.ACCENT


def moving_average(values: Sequence[float], window: int = 10) -> np.ndarray:
    """Trailing mean over up to ``window`` values (same length as ``values``)."""
    x = np.asarray(values, dtype=float)  # (N,)
    if x.size == 0:
        return x
    csum = np.cumsum(np.insert(x, 0, 0.0))  # (N+1,)
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def loss_figure(curves: LossCurves, view: View) -> go.Figure:
    """Training loss per step (raw and smoothed), held-out loss at checkpoints, optional n-gram lines."""
    t, presenter = view.t, view.presenter
    train_loss, heldout, baselines = curves.train_loss, curves.heldout_loss, curves.baselines
    steps = list(range(1, len(train_loss) + 1))
    fig = go.Figure()
    fig.add_scatter(x=steps, y=list(train_loss), name=t["train_loss"], mode="lines", line=dict(color=TRAIN, width=1),
                    hovertemplate=t["step"] + " %{x}<br>" + t["train_loss"] + " %{y:.4f}<extra></extra>")
    fig.add_scatter(x=steps, y=moving_average(train_loss), name=t["train_smooth"], mode="lines",
                    line=dict(color=SMOOTH, width=2.5),
                    hovertemplate=t["step"] + " %{x}<br>" + t["train_smooth"] + " %{y:.4f}<extra></extra>")
    if heldout:
        fig.add_scatter(x=[s for s, _ in heldout], y=[v for _, v in heldout], name=t["heldout_loss"],
                        mode="lines+markers", line=dict(color=HELDOUT, width=2.5),
                        hovertemplate=t["step"] + " %{x}<br>" + t["heldout_loss"] + " %{y:.4f}<extra></extra>")
    right = max(len(train_loss), max((s for s, _ in heldout), default=0), 10)
    for i, (key, value) in enumerate(baselines.items()):
        name = t[key]
        fig.add_scatter(x=[0, right], y=[value, value], name=name, mode="lines",
                        line=dict(color=SERIES[i % len(SERIES)], dash="dash", width=1.5),
                        hovertemplate=name + " %{y:.4f}<extra></extra>")
    fig.update_layout(title=t["loss_title"], xaxis=dict(title=t["step"], range=[0, right]),
                      yaxis=dict(title=t["loss_axis"], rangemode="tozero"),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return theme.apply(fig, presenter, height=360).update_layout(margin_t=90)


def _bars(fig: go.Figure, top: Sequence[TokenProb], row: int, col: int, t: Mapping[str, str]) -> None:
    labels = [f"{i + 1}. {for_plotly(p.token)}" for i, p in enumerate(top)]  # numbered: unique categories
    fig.add_bar(y=labels, x=[p.prob for p in top], orientation="h", row=row, col=col, showlegend=False,
                marker_color=[AFTER if i == 0 else SMOOTH for i in range(len(top))],
                text=[f"{p.prob:.0%}" for p in top], textposition="outside", cliponaxis=False,
                customdata=[for_plotly(p.token) for p in top],
                hovertemplate="%{customdata}<br>" + t["prob"] + " %{x:.4%}<extra></extra>")
    fig.update_yaxes(autorange="reversed", type="category", row=row, col=col)


def probes_figure(pa: ProbesBeforeAfter, view: View) -> go.Figure:
    """Each probe prompt's top next tokens at ``pa.before`` (left) and ``pa.after`` (right)."""
    t, presenter, before, after = view.t, view.presenter, pa.before, pa.after
    n = max(len(after.probes), 1)
    titles = []
    for b, a in zip(before.probes, after.probes):
        titles += [f"“{plotly_text(b.prompt)}” · {t['step']} {before.step}",
                   f"“{plotly_text(a.prompt)}” · {t['step']} {after.step}"]
    fig = make_subplots(rows=n, cols=2, subplot_titles=titles, horizontal_spacing=0.18, vertical_spacing=0.5 / n)
    for i, (b, a) in enumerate(zip(before.probes, after.probes), start=1):
        _bars(fig, b.top, i, 1, t)
        _bars(fig, a.top, i, 2, t)
    fig.update_xaxes(range=[0, 1.15], tickformat=".0%")
    fig.update_layout(title=t["probes_title"].format(before=before.step, after=after.step))
    return theme.apply(fig, presenter, height=140 + 170 * n)


def attention_figure(aba: AttentionBeforeAfter, view: View) -> go.Figure:
    """One head's attention on the same sentence before (step 0) and after training."""
    t, presenter, before, after, layer, head = view.t, view.presenter, aba.before, aba.after, aba.layer, aba.head
    titles = [t["attention_before"].format(step=before.step), t["attention_after"].format(step=after.step)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.12)
    for col, amap in enumerate((before, after), start=1):
        labels = plotly_axis(amap.tokens)
        fig.add_heatmap(z=amap.weights[layer, head], x=labels, y=labels, row=1, col=col, zmin=0, zmax=1,
                        colorscale=theme.SEQUENTIAL, showscale=col == 2,
                        hovertemplate=t["query"] + " %{y}<br>" + t["key"] + " %{x}<br>" + t["weight"]
                        + " %{z:.4f}<extra></extra>")
        fig.update_yaxes(autorange="reversed", title=t["query"] if col == 1 else None, row=1, col=col)
        fig.update_xaxes(title=t["key"], tickangle=-45, row=1, col=col)
    fig.update_layout(title=t["attention_title"].format(layer=layer, head=head))
    return theme.apply(fig, presenter, height=440)


def sample_rows(checkpoints: Sequence[Checkpoint], view: View) -> list[dict[str, object]]:
    """One row per (checkpoint, prompt): what the model wrote, greedy and sampled (columns named by ``view``)."""
    t = view.t
    return [{t["col_step"]: c.step, t["col_prompt"]: s.prompt, t["col_greedy"]: s.greedy, t["col_sampled"]: s.sampled}
            for c in checkpoints for s in c.samples]


def count_rows(model: NGramModel, view: View, rows: int = 10, cols: int = 5) -> list[dict[str, object]]:
    """The most frequent contexts of an n-gram model with their most frequent next tokens."""
    t = view.t
    empty = t["empty_context"]
    return [{t["col_context"]: " ".join(context) or empty, t["col_count"]: total,
             t["col_next"]: " · ".join(f"{tok} ({n})" for tok, n in top)}
            for context, total, top in model.table(rows, cols)]


def unseen_rows(found: Sequence[UnseenContinuation], view: View) -> list[dict[str, object]]:
    """Continuations a count model never saw, beside the tiny GPT's probability for them."""
    t = view.t
    return [{t["col_context"]: " ".join(u.context), t["col_token"]: u.token, t["col_kind"]: t["kind_" + u.kind.split()[1]],
             t["col_ngram_prob"]: u.ngram_prob, t["col_neural_prob"]: round(u.neural_prob, 4)} for u in found]


def compare_figure(models: ModelsOnProbes, view: View) -> go.Figure:
    """Per prompt, several models' probabilities for the union of each model's ``top`` tokens.

    Models are named by text keys (looked up in ``view.t``). A token a model never gives is
    drawn at 0 (e.g. a count model that never saw the context).
    """
    t, presenter, panels, top = view.t, view.presenter, models.panels, models.top
    n = max(len(panels), 1)
    fig = make_subplots(rows=n, cols=1, subplot_titles=[f"“{plotly_text(p)}”" for p, _ in panels],
                        vertical_spacing=0.4 / n)
    for row, (_, series) in enumerate(panels, start=1):
        tokens: list[str] = []
        for probs in series.values():
            for tok, _ in sorted(probs.items(), key=lambda kv: -kv[1])[:top]:
                if tok not in tokens:
                    tokens.append(tok)
        for i, (key, probs) in enumerate(series.items()):
            name = t[key]
            fig.add_bar(x=[for_plotly(tok) for tok in tokens], y=[probs.get(tok, 0.0) for tok in tokens], name=name,
                        marker_color=(BEFORE, AFTER)[i] if len(series) == 2 else SERIES[i % len(SERIES)],
                        legendgroup=name, showlegend=row == 1, row=row, col=1,
                        hovertemplate=name + " · “%{x}”<br>" + t["prob"] + " %{y:.4%}<extra></extra>")
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], title=t["prob"])
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return theme.apply(fig, presenter, height=120 + 230 * n).update_layout(margin_t=80)


def heldout_figure(h: HeldoutScores, view: View) -> go.Figure:
    """Held-out cross-entropy (nats per token) of each model; perplexity = e^loss in the labels."""
    t, presenter = view.t, view.presenter
    names, values = [t[key] for key in h.scores], list(h.scores.values())
    ppl = [float(np.exp(v)) for v in values]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=[SERIES[i % len(SERIES)] for i in range(len(names))],
                           customdata=ppl, text=[f"{v:.2f} · ppl {p:.1f}" for v, p in zip(values, ppl)],
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{x}<br>" + t["loss_axis"] + " %{y:.4f}<br>" + t["perplexity"]
                           + " %{customdata:.2f}<extra></extra>"))
    fig.update_layout(title=t["heldout_title"], yaxis=dict(title=t["loss_axis"], rangemode="tozero"),
                      showlegend=False)
    return theme.apply(fig, presenter, height=340)


def masks_figure(m: Masks, view: View) -> go.Figure:
    """Which positions each token may look at: GPT (causal, lower triangle) and BERT (everything)."""
    t, presenter, gpt_mask, bert_mask = view.t, view.presenter, m.gpt, m.bert
    labels = plotly_axis(m.tokens)
    fig = make_subplots(rows=1, cols=2, subplot_titles=[t["mask_gpt"], t["mask_bert"]], horizontal_spacing=0.12)
    for col, mask in enumerate((gpt_mask, bert_mask), start=1):
        fig.add_heatmap(z=mask, x=labels, y=labels, zmin=0, zmax=1, colorscale=[[0, "#f4f4f4"], [1, SMOOTH]],
                        showscale=False, row=1, col=col, xgap=1, ygap=1,
                        hovertemplate=t["query"] + " %{y}<br>" + t["key"] + " %{x}<br>" + t["allowed"]
                        + " %{z}<extra></extra>")
        fig.update_yaxes(autorange="reversed", row=1, col=col)
        fig.update_xaxes(tickangle=-45, row=1, col=col)
    fig.update_layout(title=t["masks_title"])
    return theme.apply(fig, presenter, height=420)


def objectives_loss_figure(o: ObjectiveLosses, view: View) -> go.Figure:
    """Both objectives' training loss per step (smoothed)."""
    t, presenter = view.t, view.presenter
    fig = go.Figure()
    for name, losses, colour in ((t["gpt"], o.gpt_loss, SMOOTH), (t["bert"], o.bert_loss, HELDOUT)):
        fig.add_scatter(x=list(range(1, len(losses) + 1)), y=moving_average(losses), name=name, mode="lines",
                        line=dict(color=colour, width=2.5),
                        hovertemplate=name + "<br>" + t["step"] + " %{x}<br>" + t["loss_axis"] + " %{y:.4f}<extra></extra>")
    fig.update_layout(title=t["objectives_loss_title"], xaxis_title=t["step"],
                      yaxis=dict(title=t["loss_axis"], rangemode="tozero"),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return theme.apply(fig, presenter, height=340).update_layout(margin_t=90)


def candidates_figure(f: FillTheBlank, view: View) -> go.Figure:
    """Side by side: GPT's next word after the text left of the blank, BERT's word for the blank."""
    t, presenter = view.t, view.presenter
    panels: list[tuple[str, Sequence[TokenProb]]] = [(t["gpt_guess"].format(left=plotly_text(f.left)), f.gpt),
                                                     (t["bert_guess"], f.bert)]
    n = len(panels)
    fig = make_subplots(rows=1, cols=n, subplot_titles=[title for title, _ in panels], horizontal_spacing=0.2)
    for col, (_, top) in enumerate(panels, start=1):
        _bars(fig, top, 1, col, t)
    fig.update_xaxes(range=[0, 1.15], tickformat=".0%")
    return theme.apply(fig, presenter, height=320)

