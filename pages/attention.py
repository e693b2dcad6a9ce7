"""Attention: which earlier tokens each token reads, head by head, with the real q·k numbers."""

import pandas as pd
import streamlit as st

from explainer import tokens
from explainer.analysis import attention as att
from explainer.analysis.qk import difference_from_trace, qk_steps
from explainer.analysis.windows import layer_windows, mask_shape
from explainer.figures import attention as figs
from explainer.figures import windows as wfigs
from explainer.ui.frame import state
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import figure, header, int_slider, token_picker
from explainer.ui.sections.compare import compare_section
from explainer.ui.sections.heads import head_stats_section
from explainer.words import attention as words

ctx = page_context("attention")
t, tr, common, view = ctx.t, ctx.trace, ctx.common, ctx.view
header(view)


def jump(layer: int, head: int) -> None:
    state.push("layer", layer)
    state.push("head", head)


cols = st.columns(3)
with cols[0]:
    layer = int_slider("layer", common["layer"], 0, tr.n_layers - 1)
with cols[1]:
    head = int_slider("head", common["head"], 0, tr.n_heads - 1)
with cols[2]:
    query = token_picker("token", t["query_label"], tr.tokens)
window = att.window_around(tr.n_tokens, query)
if window.size < tr.n_tokens:
    st.caption(t["window_note"].format(n=tr.n_tokens, start=window.start, last=window.stop - 1))
reading = layer_windows(tr)
if reading.local:
    st.html(wfigs.layer_strip_html(reading, view, layer))
    st.markdown(words.layer_note(reading, view, layer))

st.subheader(t["heatmap_section"])
layer_pattern = att.pattern(tr, layer, window=window)
head_pattern = layer_pattern.of_head(head)
figure(figs.attention_heatmap(layer_pattern, view, head, query), "attention_heatmap", head_pattern)
st.markdown(words.mask_note(layer_pattern, view))
if reading.local:
    shape = mask_shape(reading, layer)
    left, right = st.columns([3, 2], vertical_alignment="center") if not view.presenter else (st.container(), None)
    with left:
        figure(wfigs.mask_shape_figure(shape, view), "attention_mask", shape)
    if right is not None:
        right.markdown(words.mask_story(reading, view))
figure(figs.head_grid(layer_pattern, view, head), "attention_grid")
if not view.presenter:
    st.caption(t["grid_note"])

st.subheader(t["arcs_section"])
reads = att.reads(tr, layer, head, query, window)
figure(figs.reads_arcs(reads, view), "attention_arcs", reads)
if reads.share_before(window.start) > 0.005:
    st.caption(t["outside_window"].format(share=f"{reads.share_before(window.start):.0%}"))

st.subheader(t["steps_section"])
steps = att.key_steps(qk_steps(ctx.model, tr, layer, head, query), tr, window)
if not view.presenter:
    st.markdown(words.steps_text(steps.steps, view))
figure(figs.qk_steps_figure(steps, view), "attention_steps", steps)
st.caption(t["steps_check"].format(err=difference_from_trace(steps.steps, tr)))
if not view.presenter:
    table = pd.DataFrame([r for r in steps.rows() if r["position"] <= query])
    table["token"] = table["token"].map(tokens.shown)
    st.dataframe(table.rename(columns={k: t["col_" + k] for k in ("position", "token", "score", "scaled",
                                                                   "masked", "weight")}),
                 hide_index=True, width="stretch")

st.subheader(t["stats_section"])
if not view.presenter:
    st.markdown(t["stats_intro"])
stats = head_stats_section(tr, view, layer, head)     # behind the page: a progress line until ready
if stats is not None:
    st.markdown(t["jump_label"])
    best = {"previous": att.most_previous_token_head(stats), "induction": att.most_induction_head(stats),
            "first": att.most_first_token_head(stats), "focused": att.most_focused_head(stats)}
    buttons = st.columns(len(best))
    for col, (kind, where) in zip(buttons, best.items()):
        if where is not None:
            col.button(t[f"jump_{kind}"].format(layer=where[0], head=where[1]), key=f"jump_{kind}",
                       on_click=jump, args=where, width="stretch")
    if best["induction"] is None:
        st.info(t["no_induction"])

compare_section(ctx, "attention")
