"""Compare, under the Attention, Layers and Next token pages: a second prompt, or the untrained model.

The URL value ``compare`` is read by ``params.compare_from_url``: "" (off), ``@untrained`` (the
random GPT-2 on the same prompt), or the second prompt's text. Both traces come from the shared cache.
"""
from __future__ import annotations

import streamlit as st

from explainer import tokens
from explainer.analysis.attention import STATS, cached_head_stats
from explainer.analysis.compare import compare_answer_growth, compare_distributions, compare_head_maps
from explainer.analysis.residual import cached_lens_readout
from explainer.figures.compare import distribution_change_figure, growth_figure, head_maps_figure
from explainer.models import RANDOM_GPT2, LoadedModel
from explainer.trace import Trace
from explainer.ui.frame import binding, params, state
from explainer.ui.frame.page import PageContext
from explainer.ui.frame.shared import get_model, get_trace
from explainer.ui.frame.widgets import figure
from explainer.view import View

MODES = ("off", "prompt", "untrained")


def compare_section(ctx: PageContext, kind: str) -> None:
    """Draw the compare controls and, when on, the comparison for ``kind`` (attention|layers|next_token)."""
    view = ctx.view.using("compare")
    t = view.t
    mode, second = params.compare_from_url(state.get("compare"))
    with st.expander(t["title"], expanded=mode != "off"):
        picked = st.radio(t["mode"], MODES, key=binding.bind("cmp_mode", mode), horizontal=True,
                          format_func=lambda m: t["mode_" + m])
        other = ""
        if picked == "prompt":
            default = second if mode == "prompt" else t["default_prompt"]
            other = st.text_input(t["other_prompt"], key=binding.bind("cmp_prompt", default),
                                  max_chars=params.MAX_PROMPT_CHARS)
        state.put("compare", params.compare_to_url(picked, other))
        if picked == "off":
            st.caption(t["hint"])
            return
        if picked == "prompt" and not other.strip():
            st.info(t["empty"])
            return
        right_model = get_model(RANDOM_GPT2, state.get("device"), ctx.common) if picked == "untrained" else ctx.model
        try:
            right = get_trace(right_model, ctx.trace.text if picked == "untrained" else other,
                              int(state.get("max_tokens")))
        except ValueError as err:
            st.warning(ctx.common["bad_prompt"].format(error=err))
            return
        right_name = t["right_untrained" if picked == "untrained" else "right_prompt"]
        _DRAW[kind](ctx, view.adding(right=right_name, before=t["left"], after=right_name,
                                     chart_title=t["next_title"]), right_model, right)


def _attention(ctx: PageContext, view: View, right_model: LoadedModel, right: Trace) -> None:
    t = view.t
    stat = st.radio(t["statistic"], STATS, key="cmp_stat", horizontal=True, format_func=lambda s: t["stat_" + s])
    comp = compare_head_maps(cached_head_stats(ctx.trace), cached_head_stats(right), stat)
    figure(head_maps_figure(comp, view), "compare_heads", comp)
    st.caption(t["attention_note"] if comp.difference is not None else t["attention_note_models"])


def _layers(ctx: PageContext, view: View, right_model: LoadedModel, right: Trace) -> None:
    t = view.t
    comp = compare_answer_growth(cached_lens_readout(ctx.model, ctx.trace, ctx.trace.n_tokens - 1),
                                 cached_lens_readout(right_model, right, right.n_tokens - 1))
    cols = st.columns(2)
    for col, name, answer, first, depth in ((cols[0], t["left"], comp.answer_left, comp.first_left, comp.depth_left),
                                            (cols[1], t["right"], comp.answer_right, comp.first_right,
                                             comp.depth_right)):
        col.metric(name, tokens.shown(answer), t["first_layer"].format(layer=first, n=len(depth) - 1),
                   delta_color="off")
    figure(growth_figure(comp, view), "compare_growth", comp)


def _next_token(ctx: PageContext, view: View, right_model: LoadedModel, right: Trace) -> None:
    change = compare_distributions(ctx.trace.next_token_logits, right.next_token_logits, k=8, model=ctx.model)
    figure(distribution_change_figure(change, view), "compare_next", change)
    st.caption(view.t["next_note"].format(moved=change.total_variation))


_DRAW = {"attention": _attention, "layers": _layers, "next_token": _next_token}
