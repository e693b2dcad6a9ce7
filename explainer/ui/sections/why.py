"""Why this answer? page glue: the answer to explain, the sentence naming the top components,
the input attribution behind a progress bar, and the parts to switch off.

Numbers come from ``explainer.analysis.why`` (and ``attribution_inputs``); the words from
``text/<lang>/why.toml``; URL values (``target``, ``contrast``, ``method``, ``off``, ``mlp_off``)
go through ``explainer.ui.frame.state`` (formats in ``explainer.ui.frame.params``).
"""
from __future__ import annotations

from typing import Mapping

import streamlit as st

from explainer import tokens
from explainer.analysis.attribution import TargetError, top_components
from explainer.analysis.attribution_inputs import MAX_TOKENS, METHODS, InputAttribution, input_attribution
from explainer.analysis.prediction import next_token
from explainer.analysis.why import AnswerPushes, answer_pushes
from explainer.budget import TooLarge
from explainer.models import LoadedModel
from explainer.serving import ServingError
from explainer.trace import Trace
from explainer.ui.frame import binding, params, state
from explainer.ui.frame.widgets import choose
from explainer.view import View


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
        _explain(err, model, t)
    try:
        return answer_pushes(model, trace, target)            # the contrast alone was the problem
    except TargetError:
        return answer_pushes(model, trace)


def _explain(err: TargetError, model: LoadedModel, t: Mapping[str, str]) -> None:
    """Say in the page's language why a typed token cannot be explained; offer its first piece."""
    pieces = [tokens.for_markdown(p) for p in err.pieces]
    words = t.get("target_" + err.reason, "{error}").format(
        error=tokens.markdown_text(str(err)), pieces=t["list_sep"].join(f"“{p}”" for p in pieces), n=len(pieces),
        last=f"{model.vocab_size - 1:,}")
    st.warning(t["bad_target"].format(reason=words))
    if err.suggestion is not None and st.button(t["use_first"].format(first=pieces[0]), key="why_use_first"):
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


def sentence(p: AnswerPushes, inputs: InputAttribution | None, t: Mapping[str, str]) -> str:
    """One or two sentences naming what pushed the answer most: heads, an MLP layer, a word."""
    answer = tokens.for_markdown(p.target_label)
    parts = []
    if p.top_heads:
        first, *rest = p.top_heads
        parts.append(t["sentence_heads"].format(layer=first.layer, head=first.head, answer=answer,
                                                value=first.value, others=t["list_sep"].join(
            t["head_value"].format(layer=c.layer, head=c.head, value=c.value) for c in rest) or "—"))
    else:
        parts.append(t["sentence_no_head"].format(answer=answer))
    if p.top_mlps:
        parts.append(t["sentence_mlp"].format(layer=p.top_mlps[0].layer, value=p.top_mlps[0].value))
    if inputs is not None and len(inputs.scores) > len(inputs.kept):
        best = max((i for i in range(len(inputs.scores)) if i not in inputs.kept), key=lambda i: inputs.scores[i])
        if inputs.scores[best] > 0:
            parts.append(t["sentence_word"].format(word=tokens.for_markdown(inputs.tokens[best]),
                                                   points=100 * inputs.scores[best]))
    return t["sentence_sep"].join(parts)


def input_scores(model: LoadedModel, trace: Trace, p: AnswerPushes, view: View) -> InputAttribution | None:
    """The input attribution of the answer's probability, with the method chosen, behind a progress bar."""
    t = view.t
    method = choose("method", t["method_label"], list(METHODS), lambda m: t["method_" + m], horizontal=True, radio=True)
    if trace.truncated or trace.n_tokens > MAX_TOKENS:
        st.info(t["inputs_too_long"].format(n=MAX_TOKENS))
        return None
    label = t["inputs_running"].format(answer=tokens.for_markdown(p.target_label))
    bar = st.progress(0.0, text=label)
    try:
        return input_attribution(model, trace.text, p.attribution.target, method,
                                 progress=lambda f, _msg: bar.progress(min(max(f, 0.0), 1.0), text=f"{label} {f:.0%}"))
    except (TooLarge, ValueError, ServingError) as err:
        st.warning(t["inputs_failed"].format(error=err))
        return None
    finally:
        bar.empty()


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
