"""The guided tour's controls: a start button in the sidebar and a narration banner on each step.

``explainer.analysis.tour`` says what to show (stops: a stage and its numbers); here each stop
becomes the page that shows its stage (``explainer.registry``), the URL values that set its view
and the facts its narration is worded with. The narration is the page's own text (``tour`` or
``tour_<focus>``); the tour's buttons are worded in ``tour.toml``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import streamlit as st

from explainer import registry
from explainer.analysis.tour import Stop, plan_tour
from explainer.models import LoadedModel
from explainer.text import texts
from explainer.tokens import for_markdown
from explainer.trace import Trace
from explainer.ui.frame import params, state


@dataclass(frozen=True)
class TourStep:
    page: str                                     # page slug, e.g. "attention" (explainer.registry)
    focus: str = ""                               # which of the page's narrations: text key "tour" or "tour_<focus>"
    view: Mapping[str, Any] = field(default_factory=dict)   # URL values to set on arrival
    facts: Mapping[str, Any] = field(default_factory=dict)  # fills the narration's {placeholders} (Markdown)

    @property
    def key(self) -> str:
        """The step's name: its page, and its focus if it has one (e.g. "attention_previous")."""
        return self.page + (f"_{self.focus}" if self.focus else "")

    @property
    def narration_key(self) -> str:
        """The key of its narration in the page's own text file."""
        return "tour" + (f"_{self.focus}" if self.focus else "")


def _view(stop: Stop) -> dict[str, Any]:
    """The URL values that show ``stop`` on its page."""
    match stop.stage:
        case "attention":
            return {"layer": stop.layer, "head": stop.head, "token": -1}
        case "mlp":
            return {"layer": stop.layer, "token": -1, "neuron": stop.neuron}
        case "lens":
            return {"token": -1, "layer": stop.layer}
        case "prediction":
            return {"temp": 1.0, "top_k": 0, "top_p": 1.0}
        case "generation":
            return {"seed": 0}
        case "attribution":
            return {"target": "", "contrast": "", "off": params.heads_to_url(set(stop.heads)), "mlp_off": ""}
    return {}


def _facts(stop: Stop, trace: Trace) -> dict[str, Any]:
    """The numbers and words the narration of ``stop`` quotes, ready for Markdown."""
    answer = for_markdown(stop.answer)
    match stop.stage:
        case "journey":
            return {"n_tokens": trace.n_tokens, "n_layers": trace.n_layers, "answer": answer}
        case "tokens":
            return {"n_tokens": trace.n_tokens, "n_chars": len(trace.text)}
        case "embeddings":
            return {"d_model": trace.d_model}
        case "attention":
            return {"layer": stop.layer, "head": stop.head, "score": f"{stop.value:.0%}"}
        case "mlp":
            return {"layer": stop.layer, "neuron": stop.neuron, "value": f"{stop.value:.2f}"}
        case "lens":
            return {"answer": answer, "layer": stop.layer, "n_layers": trace.n_layers}
        case "prediction":
            return {"answer": answer, "prob": f"{stop.value:.0%}"}
        case "attribution":
            value = "" if stop.value is None else f"{stop.value:+.1f}"
            return {"layer": stop.layer, "head": stop.head, "answer": answer, "value": value,
                    "n_off": len(stop.heads)}
    return {}


def tour_steps(model: LoadedModel, trace: Trace) -> tuple[TourStep, ...]:
    """The tour for this prompt, as pages with their views and narration."""
    return tuple(TourStep(registry.page_of_stage(stop.stage).slug, stop.focus, _view(stop), _facts(stop, trace))
                 for stop in plan_tour(model, trace))


def start_button(common: Mapping[str, str]) -> None:
    """In the sidebar: start (or leave) the tour."""
    if state.get("tour") < 0:
        if st.sidebar.button(common["tour_start"], key="tour_start", width="stretch", type="primary"):
            state.push("tour", 0)
            st.switch_page(registry.DEFAULT.file)
    elif st.sidebar.button(common["tour_end"], key="tour_end_side", width="stretch"):
        state.push("tour", -1)
        st.rerun()


def banner(page: str, model: LoadedModel, trace: Trace, lang: str) -> None:
    """On a tour step: the narration for this prompt, with Back / Next / End."""
    step_index = state.get("tour")
    if step_index < 0:
        return
    steps = tour_steps(model, trace)
    t = texts("tour", lang)
    step_index = min(step_index, len(steps) - 1)
    step = steps[step_index]
    with st.container(border=True):
        narration = texts(step.page, lang)[step.narration_key].format(**step.facts)
        st.markdown(f"**{t['step'].format(i=step_index + 1, n=len(steps))}** · " + narration)
        back, forward, end = st.columns([1, 1, 1])
        if step.page != page:
            if forward.button(t["resume"], key="tour_resume", type="primary"):
                _go(steps, step_index)
            return
        if step_index > 0 and back.button(t["back"], key="tour_back"):
            _go(steps, step_index - 1)
        if step_index + 1 < len(steps) and forward.button(t["next"], key="tour_next", type="primary"):
            _go(steps, step_index + 1)
        if end.button(t["end"], key="tour_end"):
            state.push("tour", -1)
            st.rerun()


def _go(steps: tuple[TourStep, ...], index: int) -> None:
    step = steps[index]
    state.push("tour", index)
    for name, value in step.view.items():
        state.push(name, value)
    st.switch_page(registry.page(step.page).file)
