"""Layers: the residual stream through the blocks, what each block writes, and the logit lens."""
import pandas as pd
import streamlit as st

from explainer.analysis.residual import (answer_growth, block_writes, cached_lens_readout, position_window,
                                         residual_norms)
from explainer.figures.layers import growth_figure, lens_grid_figure, norms_figure, writes_figure
from explainer.figures.overview import human, markdown_safe
from explainer.ui import state
from explainer.ui.compare import compare_section
from explainer.ui.resources import page_context
from explainer.ui.widgets import figure, header, int_slider, token_picker

ctx = page_context("layers")
t, trace, presenter = ctx.t, ctx.trace, ctx.presenter
width = 10 if presenter else 16                         # positions in the logit-lens grid
top = st.container()                                    # the header goes here, once the notice is known
norms = residual_norms(trace)
position = token_picker("token", t["pick_position"], trace.tokens, stale=ctx.common["stale_value"])
# The logit lens costs ~0.1 s per position on a CPU: computed per position, once per trace.
growth = answer_growth(cached_lens_readout(ctx.model, trace, position, position + 1), position)
facts = dict(position=position, token=markdown_safe(growth.token), answer=markdown_safe(growth.answer),
             layer=growth.first_layer, n=growth.n_layers, rank=growth.rank_before_last + 1)
kind = "growth_zero" if growth.first_layer == 0 else "growth_last" if growth.first_layer == growth.n_layers \
    else "growth_first"
sink = t["sink_yes" if norms.first_token_stands_out() else "sink_no"].format(
    sink_norm=human(norms.largest[2]), median_norm=human(norms.typical))
with top:
    header({**t, "notice": t["notice"].format(growth=t[kind].format(**facts), sink=sink),
            "notice_label": ctx.common["notice_label"]}, presenter)

cols = st.columns(3)
cols[0].metric(t["metric_answer"], f"“{growth.answer}”", f"{growth.probs[-1]:.1%}", delta_color="off",
                delta_arrow="off")
cols[1].metric(t["metric_first"], f"{growth.first_layer} / {growth.n_layers}")
cols[2].metric(t["metric_rank"], f"#{int(growth.ranks[0]) + 1:,}")

st.subheader(t["growth_title"])
growth_data = pd.DataFrame({"layer": range(growth.n_layers + 1), "answer": growth.answer,
                            "answer_prob": growth.probs, "answer_rank": growth.ranks + 1,
                            "top_guess": growth.top_labels, "top_prob": growth.top_probs})
figure(growth_figure(growth, t, presenter), "layers_growth", data=growth_data, labels=ctx.common)

start = 0
if trace.n_tokens > width:
    if state.get("window") < 0:                         # first visit: the window that holds the position
        state.push("window", position_window(trace.n_tokens, position, width)[0])
    start = int_slider("window", t["window_start"], 0, trace.n_tokens - width,
                       help=t["window_help"].format(width=width), stale=ctx.common["stale_value"])
with st.spinner(t["lens_spinner"]):
    readout = cached_lens_readout(ctx.model, trace, start, min(start + width, trace.n_tokens))
lens_data = pd.DataFrame([{"layer": l, "position": readout.start + j, "token": tok,
                           "top_guess": readout.top_labels[l][j], "top_prob": float(readout.top_probs[l, j])}
                          for l in range(readout.n_layers + 1) for j, tok in enumerate(readout.tokens)])
figure(lens_grid_figure(readout, t, position, presenter), "layers_lens", data=lens_data, labels=ctx.common)

writes = block_writes(trace)
figure(writes_figure(writes, position, t, presenter), "layers_writes",
       data=pd.DataFrame({"block": range(trace.n_layers), "attention": writes.attn[:, position],
                          "mlp": writes.mlp[:, position], "attention_median": writes.attn_median,
                          "mlp_median": writes.mlp_median}), labels=ctx.common)
st.caption(t["writes_caption"])

norm_data = pd.DataFrame(norms.norms, columns=[f"{i}:{tok}" for i, tok in enumerate(trace.tokens)])
figure(norms_figure(norms, t, position, presenter), "layers_norms",
       data=norm_data.rename_axis("layer").reset_index(), labels=ctx.common)

compare_section(ctx, "layers")
