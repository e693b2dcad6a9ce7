"""The guided tour's controls: a start button in the sidebar and a narration banner on each step."""
from __future__ import annotations

from typing import Mapping

import streamlit as st

from explainer.analysis.tour import TourStep, cached_tour
from explainer.models import LoadedModel
from explainer.text import texts
from explainer.trace import Trace
from explainer.ui import state


def start_button(common: Mapping[str, str]) -> None:
    """In the sidebar: start (or leave) the tour."""
    if state.get("tour") < 0:
        if st.sidebar.button(common["tour_start"], key="tour_start", width="stretch", type="primary"):
            state.push("tour", 0)
            st.switch_page("pages/overview.py")
    elif st.sidebar.button(common["tour_end"], key="tour_end_side", width="stretch"):
        state.push("tour", -1)
        st.rerun()


def banner(page: str, model: LoadedModel, trace: Trace, lang: str) -> None:
    """On a tour step: the narration for this prompt, with Back / Next / End."""
    step_index = state.get("tour")
    if step_index < 0:
        return
    steps = cached_tour(model, trace)
    t = texts("tour", lang)
    step_index = min(step_index, len(steps) - 1)
    step = steps[step_index]
    with st.container(border=True):
        st.markdown(f"**{t['step'].format(i=step_index + 1, n=len(steps))}** · " + _narration(t, step))
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


def _narration(t: Mapping[str, str], step: TourStep) -> str:
    facts = {k: _md_safe(str(v)) for k, v in step.facts.items()}
    return t[step.key].format(**facts)


def _md_safe(text: str) -> str:
    """Token text inside Markdown: backslash-escape the characters Markdown would act on."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|~$" else ch for ch in text)


def _go(steps: tuple[TourStep, ...], index: int) -> None:
    step = steps[index]
    state.push("tour", index)
    for name, value in step.view.items():
        state.push(name, value)
    st.switch_page(f"pages/{step.page}.py")
