"""Generation views: the growing text (escaped HTML), one step's candidates, confidence per step."""
from __future__ import annotations

import html
from typing import Mapping, Sequence

import plotly.graph_objects as go

from explainer.analysis.generation import Step
from explainer.figures import theme

CHOSEN = theme.ACCENT
RUNNER_UP = "#1f77b4"
REMOVED = "#c9ced6"


def text_html(prompt: str, steps: Sequence[Step], selected: int | None, hover: str) -> str:
    """The prompt (plain) followed by each generated token as a numbered chip; all text escaped.

    ``hover`` is a str.format template with {step} and {prob} (the chip's tooltip).
    """
    parts = [f'<span style="color:#555">{html.escape(prompt)}</span>']
    for s in steps:
        border = "2px solid " + CHOSEN if s.index == selected else "1px solid #0002"
        title = html.escape(hover.format(step=s.index + 1, prob=f"{s.chosen_prob:.1%}"))
        parts.append(f'<span class="tok" style="background:#fde2c4;border:{border}" title="{title}">'
                     f"{html.escape(s.chosen_label)}<sub>{s.index + 1}</sub></span>")
    return '<div class="tok-row" style="white-space:pre-wrap">' + "".join(parts) + "</div>"


def step_figure(step: Step, t: Mapping[str, str], presenter: bool = False) -> go.Figure:
    """The candidates at one step: the chosen token in red, runners-up in blue, removed ones grey."""
    labels = [f"“{html.escape(s, quote=False)}”" for s in step.top_labels]
    ys = [lab + "\u200b" * i for i, lab in enumerate(labels)]          # unique categories, invisible
    possible = [a > 0 or step.greedy for a in step.top_adjusted]       # greedy rules nothing out
    colours = [CHOSEN if i == step.chosen_id else (RUNNER_UP if ok else REMOVED)
               for i, ok in zip(step.top_ids, possible)]
    status = [t["chosen"] if i == step.chosen_id else (t["runner_up"] if ok else t["removed"])
              for i, ok in zip(step.top_ids, possible)]
    custom = [[i, a, s, lab] for i, a, s, lab in zip(step.top_ids, step.top_adjusted, status, labels)]
    fig = go.Figure(go.Bar(
        y=ys, x=step.top_probs, orientation="h", marker_color=colours, customdata=custom,
        text=[f"{p:.1%}" for p in step.top_probs], textposition="outside", cliponaxis=False,
        hovertemplate=("%{customdata[3]} · id %{customdata[0]} · %{customdata[2]}<br>" + t["prob"]
                       + ": %{x:.4%}<br>" + t["prob_adjusted"] + ": %{customdata[1]:.4%}<extra></extra>")))
    title = t["step_title"].format(step=step.index + 1, token=html.escape(step.chosen_label, quote=False), prob=step.chosen_prob)
    if step.chosen_id not in step.top_ids:
        title += " " + t["outside_top"]
    fig.update_layout(title=title, xaxis=dict(title=t["prob"], tickformat=".0%"),
                      yaxis=dict(autorange="reversed", type="category"), showlegend=False)
    return theme.apply(fig, presenter, height=max(300, 28 * len(ys) + 110))


def confidence_figure(steps: Sequence[Step], selected: int | None, t: Mapping[str, str],
                      presenter: bool = False) -> go.Figure:
    """The probability of the chosen token at every step, and the entropy (bits) on a second axis."""
    x = [s.index + 1 for s in steps]
    labels = [html.escape(s.chosen_label, quote=False) for s in steps]
    fig = go.Figure()
    fig.add_bar(x=x, y=[s.chosen_prob for s in steps], name=t["prob_chosen"], customdata=labels,
                marker_color=[CHOSEN if s.index == selected else RUNNER_UP for s in steps],
                hovertemplate=t["step"] + " %{x}: “%{customdata}”<br>" + t["prob"] + " %{y:.4%}<extra></extra>")
    fig.add_scatter(x=x, y=[s.entropy_bits for s in steps], name=t["entropy"], yaxis="y2", mode="lines+markers",
                    line=dict(color=theme.MUTED), customdata=labels,
                    hovertemplate=t["step"] + " %{x}: “%{customdata}”<br>" + t["entropy"] + " %{y:.3f}<extra></extra>")
    fig.update_layout(xaxis=dict(title=t["step"], dtick=1 if len(x) <= 32 else None, range=[0.4, max(len(x), 8) + 0.6]),
                      yaxis=dict(title=t["prob_chosen"], tickformat=".0%", range=[0, 1.05]),
                      yaxis2=dict(title=t["entropy"], overlaying="y", side="right", rangemode="tozero", showgrid=False),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0), title=t["confidence_title"])
    return theme.apply(fig, presenter, height=340).update_layout(margin_t=110 if presenter else 85)


_MARKDOWN = set("\\`*_{}[]()#+-.!|<>~$:=\"'&")


def pill_label(step: Step) -> str:
    """A step's chip label for st.pills (which renders Markdown): number and token, escaped."""
    token = "".join("\\" + ch if ch in _MARKDOWN else ch for ch in step.chosen_label.strip() or "␣")
    return f"{step.index + 1} · {token}"
