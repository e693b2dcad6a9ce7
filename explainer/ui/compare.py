"""Compare, under the Attention, Layers and Next token pages: a second prompt, or the untrained model.

The URL value ``compare`` is "" (off), ``@untrained`` (the random GPT-2 on the same prompt), or
the second prompt's text. Both traces come from the shared cache.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from explainer.analysis.attention import STATS, cached_head_stats
from explainer.analysis.compare import compare_answer_growth, compare_distributions, compare_head_maps
from explainer.analysis.residual import cached_lens_readout
from explainer.figures.compare import distribution_change_figure, growth_figure, head_maps_figure
from explainer.models import RANDOM_GPT2
from explainer.text import texts
from explainer.tokens import token_labels
from explainer.ui import state
from explainer.ui.resources import PageContext, get_model, get_trace
from explainer.ui.widgets import _bind, figure

UNTRAINED = "@untrained"
MODES = ("off", "prompt", "untrained")


def compare_section(ctx: PageContext, kind: str) -> None:
    """Draw the compare controls and, when on, the comparison for ``kind`` (attention|layers|next_token)."""
    t = texts("compare", ctx.lang)
    current = state.get("compare")
    mode = "off" if not current else "untrained" if current == UNTRAINED else "prompt"
    with st.expander(t["title"], expanded=mode != "off"):
        picked = st.radio(t["mode"], MODES, key=_bind("cmp_mode", mode), horizontal=True,
                          format_func=lambda m: t["mode_" + m])
        if picked == "prompt":
            default = current if mode == "prompt" else t["default_prompt"]
            other = st.text_input(t["other_prompt"], key=_bind("cmp_prompt", default), max_chars=state.MAX_PROMPT_CHARS)
            state.put("compare", other)
        else:
            state.put("compare", "" if picked == "off" else UNTRAINED)
        if picked == "off":
            st.caption(t["hint"])
            return
        if picked == "prompt" and not other.strip():
            st.info(t["empty"])
            return
        right_model = get_model(RANDOM_GPT2, state.get("device"), ctx.common) if picked == "untrained" else ctx.model
        right_text = ctx.trace.text if picked == "untrained" else other
        try:
            right = get_trace(right_model, right_text, int(state.get("max_tokens")))
        except ValueError as err:
            st.warning(ctx.common["bad_prompt"].format(error=err))
            return
        names = (t["left"], t["right_untrained"] if picked == "untrained" else t["right_prompt"])
        _DRAW[kind](ctx, t, right_model, right, names)


def _attention(ctx, t, right_model, right, names) -> None:
    stat = st.radio(t["statistic"], STATS, key="cmp_stat", horizontal=True, format_func=lambda s: t["stat_" + s])
    comp = compare_head_maps(cached_head_stats(ctx.trace), cached_head_stats(right), stat)
    fig = head_maps_figure(comp, names[0], names[1], t["difference"], ctx.common["layer"], ctx.common["head"],
                           ctx.presenter)
    data = {"statistic": stat, names[0]: comp.left.tolist(), names[1]: comp.right.tolist()}
    figure(fig, "compare_heads", data=data, labels=ctx.common)
    st.caption(t["attention_note"] if comp.difference is not None else t["attention_note_models"])


def _layers(ctx, t, right_model, right, names) -> None:
    comp = compare_answer_growth(cached_lens_readout(ctx.model, ctx.trace, ctx.trace.n_tokens - 1),
                                 cached_lens_readout(right_model, right, right.n_tokens - 1))
    cols = st.columns(2)
    cols[0].metric(names[0], repr(comp.answer_left), t["first_layer"].format(layer=comp.first_left,
                                                                              n=len(comp.depth_left) - 1), delta_color="off")
    cols[1].metric(names[1], repr(comp.answer_right), t["first_layer"].format(layer=comp.first_right,
                                                                               n=len(comp.depth_right) - 1), delta_color="off")
    fig = growth_figure(comp, names[0], names[1], t["depth"], t["answer_prob"], ctx.presenter)
    data = {names[0]: comp.probs_left.tolist(), names[1]: comp.probs_right.tolist()}
    figure(fig, "compare_growth", data=data, labels=ctx.common)


def _next_token(ctx, t, right_model, right, names) -> None:
    change = compare_distributions(ctx.trace.next_token_logits, right.next_token_logits, k=8)
    with ctx.model.lock:
        labels = token_labels(ctx.model.tokenizer, change.ids)
    fig = distribution_change_figure(change, labels, names[0], names[1], t["next_title"], t["prob"], ctx.presenter)
    table = pd.DataFrame({"token": labels, "id": change.ids, names[0]: change.before, names[1]: change.after})
    figure(fig, "compare_next", data=table, labels=ctx.common)
    st.caption(t["next_note"].format(moved=change.total_variation))


_DRAW = {"attention": _attention, "layers": _layers, "next_token": _next_token}
