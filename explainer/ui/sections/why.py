"""Why this answer? page glue: the answer to explain (its problems worded by ``explainer.words.why``),
the words scored behind the page (a background job, :mod:`explainer.ui.frame.background`), and the
parts to switch off.

Numbers come from ``explainer.analysis.why`` (and ``attribution_inputs``); the words from
``text/<lang>/why.toml``; URL values (``target``, ``contrast``, ``method``, ``off``, ``mlp_off``)
go through ``explainer.ui.frame.state`` (formats in ``explainer.ui.frame.params``).
"""
from __future__ import annotations

import time
from typing import Mapping

import streamlit as st

from explainer import tokens
from explainer.analysis.attribution import TargetError, top_components
from explainer.analysis import attribution_inputs
from explainer.analysis.attribution_inputs import MAX_TOKENS, METHODS, InputAttribution, input_attribution
from explainer.analysis.prediction import next_token
from explainer.analysis.why import AnswerPushes, answer_pushes
from explainer.figures import why as figs
from explainer.jobs import JobContext, runner
from explainer.models import LoadedModel
from explainer.trace import Trace
from explainer.ui.frame import binding, params, session, state
from explainer.ui.frame.background import behind
from explainer.ui.frame.widgets import choose, figure
from explainer.view import View
from explainer.words import why as words

QUICK_FIRST_S = 2.0     # integrated gradients expected to take longer: gradient × input is shown first
FIRST_POINTS = 32       # the points of integrated gradients' first round (explainer.analysis.attribution_paths)


def answer_choice(model: LoadedModel, trace: Trace, view: View) -> AnswerPushes:
    """Pick the answer to explain (top-10 or typed) and what to compare it with; their pushes.

    A typed answer that is not one token gets the reason and the top prediction instead.
    """
    t = view.t
    dist = next_token(model, trace, show=10)
    options = [f"#{i}" for i in dist.top_ids]
    names = {o: t["option"].format(token=tokens.shown(label), prob=p)
             for o, label, p in zip(options, dist.top_labels, dist.top_probs)}
    scope = (model.name, trace.text)
    cols = st.columns(2)
    target = _pick(cols[0], "target", state.get("target") or options[0], options, names, t["target_label"],
                   t["target_help"], scope)
    state.put("target", "" if target == options[0] else target)
    contrast = _pick(cols[1], "contrast", state.get("contrast"), [""] + options, {**names, "": t["no_contrast"]},
                     t["contrast_label"], t["contrast_help"], scope)
    state.put("contrast", contrast)
    try:
        return answer_pushes(model, trace, target, contrast or None)
    except TargetError as err:
        _explain(err, model, view)
    try:
        return answer_pushes(model, trace, target)            # the contrast alone was the problem
    except TargetError:
        return answer_pushes(model, trace)


def _explain(err: TargetError, model: LoadedModel, view: View) -> None:
    """Say in the page's language why a typed token cannot be explained; offer its first piece."""
    st.warning(words.target_problem(err, model.vocab_size, view))
    first = tokens.for_markdown(err.pieces[0]) if err.pieces else ""
    if err.suggestion is not None and st.button(view.t["use_first"].format(first=first), key="why_use_first"):
        state.push("target", f"#{err.suggestion}")
        st.rerun()


def _pick(where, name: str, value: str, options: list[str], names: Mapping[str, str], label: str, help: str,
          scope) -> str:
    """A select box over the top predictions that also takes a typed token (kept as typed)."""
    if value not in options:
        options = options + [value]
    chosen = where.selectbox(label, options, key=binding.bind(name, value, scope), help=help, accept_new_options=True,
                             format_func=lambda o: names.get(o, o))
    return chosen if isinstance(chosen, str) else ""


def input_scores(model: LoadedModel, trace: Trace, p: AnswerPushes, view: View) -> InputAttribution | None:
    """The words scored for the answer, computed behind the page; drawn with their note when ready
    (before that, gradient × input when integrated gradients take a while). Returns the final scores."""
    t = view.t
    method = choose("method", t["method_label"], list(METHODS), lambda m: t["method_" + m], horizontal=True, radio=True)
    if trace.truncated or trace.n_tokens > MAX_TOKENS:
        st.info(t["inputs_too_long"].format(n=MAX_TOKENS))
        return None
    base = ("inputs", model.name, str(model.device), trace.text, p.attribution.target, method)
    rounds = session.stored("_why_refine", base) or 0         # times this session asked to refine (not in the URL)
    previous = runner().poll(base + (rounds - 1,)).result if rounds else None
    if rounds and previous is None:                           # the earlier round was forgotten: start again
        rounds = session.keep("_why_refine", base, 0)
    answer = tokens.for_markdown(p.target_label)
    label = t["inputs_refining" if rounds else "inputs_running"].format(answer=answer)
    status = behind("why.inputs", base + (rounds,), _scoring(model, trace.text, p.attribution.target, method, previous),
                    label, view.common)
    if status.state == "failed":
        st.warning(t["inputs_failed"].format(error=status.error))
    shown = status.result or status.partial or previous
    if shown is None:
        return None
    st.html(figs.inputs_html(shown, view))
    figure(figs.inputs_figure(shown, view), "why_inputs", shown)
    if status.result is None:
        if status.pending:
            st.caption(t["inputs_quick"] if shown.method != method else t["inputs_refining"].format(answer=answer))
        return None
    _note(status.result, base, rounds, view)
    return status.result


def _scoring(model: LoadedModel, text: str, target: int, method: str, previous: InputAttribution | None):
    """The job: input attribution, continuing ``previous``; for integrated gradients that will take
    a while, gradient × input is published first."""
    def compute(progress: JobContext) -> InputAttribution:
        if method == "integrated_gradients" and previous is None:
            began = time.monotonic()
            quick = input_attribution(model, text, target, "gradient_x_input",
                                      progress=lambda _f, message: progress(0.0, message))
            if (time.monotonic() - began) * FIRST_POINTS > QUICK_FIRST_S:
                progress.publish(quick)
        return input_attribution(model, text, target, method, progress=progress, refine=previous,
                                 budget_s=attribution_inputs.BUDGET_S)
    return compute


def _note(r: InputAttribution, base: tuple, rounds: int, view: View) -> None:
    """What the scores add up to; when they miss the 5 % target, by how much, and a button to refine."""
    t = view.t
    if not r.missed:
        st.caption(words.scores_note(r, view))
        return
    st.warning(words.scores_note(r, view))
    if r.stopped == "budget" and st.button(t["inputs_refine"].format(seconds=attribution_inputs.BUDGET_S),
                                           key="why_refine", help=t["inputs_refine_help"]):
        session.keep("_why_refine", base, rounds + 1)
        st.rerun()


def switch_off_choice(model: LoadedModel, p: AnswerPushes, t: Mapping[str, str]) -> tuple[frozenset, frozenset]:
    """Heads and MLP layers to switch off: chosen, or the three that push most / three idle heads in one click."""
    heads, bad_heads = params.heads_from_url(state.get("off"), model.n_layers, model.n_heads)
    mlps, bad_mlps = params.layers_from_url(state.get("mlp_off"), model.n_layers)
    if bad_heads or bad_mlps:
        st.info(t["bad_values"].format(values=", ".join(bad_heads + bad_mlps)))
    quick = {"top": top_components(p.attribution, 3, "up", kinds=("head",)),
             "idle": top_components(p.attribution, 3, "idle", kinds=("head",))}
    buttons = st.columns(3)
    for column, (kind, found) in zip(buttons, quick.items()):
        if column.button(t["off_" + kind], key=f"why_off_{kind}", width="stretch"):
            state.push("off", params.heads_to_url({(c.layer, c.head) for c in found}))
            state.push("mlp_off", "")
            st.rerun()
    if buttons[2].button(t["off_none"], key="why_off_none", width="stretch", disabled=not heads and not mlps):
        state.push("off", "")
        state.push("mlp_off", "")
        st.rerun()
    cols = st.columns([3, 2])
    options = [(l, h) for l in range(model.n_layers) for h in range(model.n_heads)]
    chosen = cols[0].multiselect(t["heads_label"], options, key=binding.bind("off", sorted(heads), model.name), placeholder=t["choose"],
                                 format_func=lambda lh: t["head_option"].format(layer=lh[0], head=lh[1]))
    chosen_mlps = cols[1].multiselect(t["mlps_label"], list(range(model.n_layers)),
                                      key=binding.bind("mlp_off", sorted(mlps), model.name), placeholder=t["choose"],
                                      format_func=lambda l: t["mlp_option"].format(layer=l))
    state.put("off", params.heads_to_url(frozenset(chosen)))
    state.put("mlp_off", params.layers_to_url(chosen_mlps))
    return frozenset(chosen), frozenset(chosen_mlps)
