"""Layers: the residual stream through the blocks, what each block writes, and the logit lens."""
import streamlit as st

from explainer import tokens
from explainer.analysis.residual import answer_growth, block_writes, cached_lens_readout, position_window, residual_norms
from explainer.figures.layers import growth_figure, norms_figure, writes_figure
from explainer.ui.frame import state
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import figure, header, int_slider, token_picker
from explainer.ui.sections.compare import compare_section
from explainer.ui.sections.lens import lens_grid
from explainer.words import layers as words

ctx = page_context("layers")
t, trace, view = ctx.t, ctx.trace, ctx.view
width = 10 if view.presenter else 16                   # positions in the logit-lens grid
top = st.container()                                    # the header goes here, once the notice is known
position = token_picker("token", t["pick_position"], trace.tokens)
norms = residual_norms(trace)
# The logit lens costs ~0.1 s per position on a CPU: computed per position, once per trace.
growth = answer_growth(cached_lens_readout(ctx.model, trace, position, position + 1), position)
with top:
    header(view.adding(notice=words.notice(growth, norms, view)))

cols = st.columns(3)
cols[0].metric(t["metric_answer"], tokens.shown(growth.answer), f"{growth.probs[-1]:.1%}", delta_color="off",
               delta_arrow="off")
cols[1].metric(t["metric_first"], f"{growth.first_layer} / {growth.n_layers}")
cols[2].metric(t["metric_rank"], f"#{int(growth.ranks[0]) + 1:,}")

st.subheader(t["growth_title"])
figure(growth_figure(growth, view), "layers_growth", growth)

start = 0
if trace.n_tokens > width:
    if state.get("window") < 0:                         # first visit: the window that holds the position
        state.push("window", position_window(trace.n_tokens, position, width)[0])
    start = int_slider("window", t["window_start"], 0, trace.n_tokens - width,
                       help=t["window_help"].format(width=width))
lens_grid(ctx.model, trace, start, min(start + width, trace.n_tokens), view, position)   # behind the page if new

writes = block_writes(trace, position)
figure(writes_figure(writes, view), "layers_writes", writes)
st.caption(t["writes_caption"])
figure(norms_figure(norms, view, position), "layers_norms", norms)

compare_section(ctx, "layers")
