"""Generation views: the growing text (escaped HTML), one step's candidates, confidence per step.

Builders are ``build(result, view)``. Generated tokens that are bytes of one character sit under
that character once its bytes are complete; a token that is part of a character says so on hover.
"""
from __future__ import annotations

import html

import plotly.graph_objects as go

from explainer.analysis.generation import SoFar, Step
from explainer.figures import theme
from explainer.figures.prediction import part_notes
from explainer.figures.tokens import Chip, chip_row
from explainer.tokens import character_groups, for_markdown, for_plotly, part_words, pending
from explainer.view import View

CHOSEN = theme.ACCENT
RUNNER_UP = "#1f77b4"
REMOVED = "#c9ced6"


def text_html(so_far: SoFar, view: View, selected: int | None = None) -> str:
    """The prompt (plain) followed by each generated token as a numbered chip, step ``selected`` (the
    page's) outlined; all text escaped.

    Reads ``chip_hover`` ({step}, {prob}), the chip's tooltip.
    """
    chips = []
    before = so_far.context
    for s in so_far.steps:
        title = view.t["chip_hover"].format(step=s.index + 1, prob=f"{s.chosen_prob:.1%}")
        part = part_words(s.chosen_bytes, before, view.common)
        before = pending(before + s.chosen_bytes)
        border = "2px solid " + CHOSEN if s.index == selected else "1px solid #0002"
        chips.append(Chip(s.chosen_label, s.chosen_bytes, str(s.index + 1), title + (f" · {part}" if part else ""),
                          "#fde2c4", border))
    groups = character_groups([c.data for c in chips], so_far.context)
    return chip_row(chips, groups, view, before=f'<span style="color:#555">{html.escape(so_far.prompt)}</span>',
                    wrap=True)


def step_figure(step: Step, view: View) -> go.Figure:
    """The candidates at one step: the chosen token in red, runners-up in blue, removed ones grey.

    Reads chosen, runner_up, removed, prob, prob_adjusted, step_title ({step}, {token}, {prob}), outside_top.
    """
    t = view.t
    labels = [for_plotly(s) for s in step.top_labels]
    ys = [lab + "\u200b" * i for i, lab in enumerate(labels)]          # unique categories, invisible
    possible = [a > 0 or step.greedy for a in step.top_adjusted]       # greedy rules nothing out
    colours = [CHOSEN if i == step.chosen_id else (RUNNER_UP if ok else REMOVED)
               for i, ok in zip(step.top_ids, possible)]
    status = [t["chosen"] if i == step.chosen_id else (t["runner_up"] if ok else t["removed"])
              for i, ok in zip(step.top_ids, possible)]
    notes = part_notes(step.top_bytes, step.context, view) if step.top_bytes else [""] * len(ys)
    custom = [[i, a, s, lab, n] for i, a, s, lab, n in zip(step.top_ids, step.top_adjusted, status, labels, notes)]
    fig = go.Figure(go.Bar(
        y=ys, x=step.top_probs, orientation="h", marker_color=colours, customdata=custom,
        text=[f"{p:.1%}" for p in step.top_probs], textposition="outside", cliponaxis=False,
        hovertemplate=("%{customdata[3]} · id %{customdata[0]} · %{customdata[2]}%{customdata[4]}<br>" + t["prob"]
                       + ": %{x:.4%}<br>" + t["prob_adjusted"] + ": %{customdata[1]:.4%}<extra></extra>")))
    title = t["step_title"].format(step=step.index + 1, token=for_plotly(step.chosen_label), prob=step.chosen_prob)
    if step.chosen_id not in step.top_ids:
        title += " " + t["outside_top"]
    fig.update_layout(title=title, xaxis=dict(title=t["prob"], tickformat=".0%"),
                      yaxis=dict(autorange="reversed", type="category"), showlegend=False)
    return theme.apply(fig, view.presenter, height=max(300, 28 * len(ys) + 110))


def confidence_figure(so_far: SoFar, view: View, selected: int | None = None) -> go.Figure:
    """The probability of the chosen token at every step (step ``selected``, the page's, in red), and
    the entropy (bits) on a second axis.

    Reads prob_chosen, prob, entropy, step, confidence_title.
    """
    t, steps = view.t, so_far.steps
    x = [s.index + 1 for s in steps]
    labels = [for_plotly(s.chosen_label) for s in steps]
    fig = go.Figure()
    fig.add_bar(x=x, y=[s.chosen_prob for s in steps], name=t["prob_chosen"], customdata=labels,
                marker_color=[CHOSEN if s.index == selected else RUNNER_UP for s in steps],
                hovertemplate=t["step"] + " %{x}: %{customdata}<br>" + t["prob"] + " %{y:.4%}<extra></extra>")
    fig.add_scatter(x=x, y=[s.entropy_bits for s in steps], name=t["entropy"], yaxis="y2", mode="lines+markers",
                    line=dict(color=theme.MUTED), customdata=labels,
                    hovertemplate=t["step"] + " %{x}: %{customdata}<br>" + t["entropy"] + " %{y:.3f}<extra></extra>")
    fig.update_layout(xaxis=dict(title=t["step"], dtick=1 if len(x) <= 32 else None, range=[0.4, max(len(x), 8) + 0.6]),
                      yaxis=dict(title=t["prob_chosen"], tickformat=".0%", range=[0, 1.05]),
                      yaxis2=dict(title=t["entropy"], overlaying="y", side="right", rangemode="tozero", showgrid=False),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0), title=t["confidence_title"])
    return theme.apply(fig, view.presenter, height=340).update_layout(margin_t=110 if view.presenter else 85)


def pill_label(step: Step) -> str:
    """A step's chip label for st.pills (which renders Markdown): number and token, by the one rule."""
    return f"{step.index + 1} · {for_markdown(step.chosen_label)}"
