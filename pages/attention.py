"""Attention: which earlier tokens each token reads, head by head, with the real q·k numbers."""
import pandas as pd
import streamlit as st

from explainer.analysis import attention as att
from explainer.analysis.qk import difference_from_trace, qk_steps
from explainer.figures import attention as figs
from explainer.ui import state
from explainer.ui.compare import compare_section
from explainer.ui.resources import page_context
from explainer.ui.widgets import figure, header, int_slider, token_picker

ctx = page_context("attention")
t, tr, common = ctx.t, ctx.trace, ctx.common
header(t, ctx.presenter)


def jump(layer: int, head: int) -> None:
    for name, value in (("layer", layer), ("head", head)):
        state.push(name, value)
        st.session_state.pop("w_" + name, None)   # int_slider would otherwise keep the live slider value


cols = st.columns(3)
with cols[0]:
    layer = int_slider("layer", common["layer"], 0, tr.n_layers - 1, stale=common["stale_value"])
with cols[1]:
    head = int_slider("head", common["head"], 0, tr.n_heads - 1, stale=common["stale_value"])
with cols[2]:
    query = token_picker("token", t["query_label"], tr.tokens, stale=common["stale_value"])
window = att.window_around(tr.n_tokens, query)
if window.size < tr.n_tokens:
    st.caption(t["window_note"].format(n=tr.n_tokens, start=window.start, last=window.stop - 1))

st.subheader(t["heatmap_section"])
layer_pattern = att.pattern(tr, layer, window=window)
figure(figs.attention_heatmap(layer_pattern, head, t, query, ctx.presenter), "attention_heatmap",
       data={"layer": layer, "head": head, "positions": [window.start, window.stop],
             "tokens": list(layer_pattern.tokens), "weights": figs.rounded(layer_pattern.weights[head])},
       labels=common)
st.markdown(t["mask_note"])
figure(figs.head_grid(layer_pattern, t, head, ctx.presenter), "attention_grid", labels=common)
if not ctx.presenter:
    st.caption(t["grid_note"])

st.subheader(t["arcs_section"])
reads = att.reads(tr, layer, head, query)
figure(figs.reads_arcs(reads, tr.tokens, window, t, ctx.presenter), "attention_arcs",
       data=pd.DataFrame({"position": range(query + 1), "token": tr.tokens[:query + 1], "weight": reads.weights}),
       labels=common)
if reads.share_before(window.start) > 0.005:
    st.caption(t["outside_window"].format(share=f"{reads.share_before(window.start):.0%}"))

st.subheader(t["steps_section"])
steps = qk_steps(ctx.model, tr, layer, head, query)
kv_note = (t["kv_note"].format(head=head, kv=steps.kv_head, group=", ".join(map(str, steps.sharing)))
           if steps.sharing else "")
if not ctx.presenter:
    st.markdown(t["steps_intro"].format(d=steps.head_dim, kv_note=kv_note))
table = pd.DataFrame(steps.rows(window.start, window.stop),
                     columns=[t["col_position"], t["col_score"], t["col_scaled"], t["col_masked"], t["col_weight"]])
table.insert(1, t["col_token"], tr.tokens[window.start:window.stop])
figure(figs.qk_steps_figure(steps, tr.tokens, window, t, ctx.presenter), "attention_steps", data=table,
       labels=common)
st.caption(t["steps_check"].format(err=difference_from_trace(steps, tr)))
if not ctx.presenter:
    st.dataframe(table[table[t["col_position"]] <= query], hide_index=True, width="stretch")

st.subheader(t["stats_section"])
if not ctx.presenter:
    st.markdown(t["stats_intro"])
with st.spinner(t["stats_spinner"]):
    stats = att.cached_head_stats(tr)
figure(figs.head_stats_figure(stats, t, (layer, head), ctx.presenter), "attention_head_stats",
       data={name: figs.rounded(stats.get(name)) for name in att.STATS}, labels=common)
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
