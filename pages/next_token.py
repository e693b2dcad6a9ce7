"""Next token: the softmax over the whole vocabulary and how sampling settings reshape it."""
import math

import streamlit as st

from explainer import tokens
from explainer.analysis.prediction import TrainedVsUntrained, next_token, nucleus
from explainer.figures import prediction as figs
from explainer.models import RANDOM_GPT2
from explainer.ui.frame import state
from explainer.ui.frame.page import page_context
from explainer.ui.frame.shared import get_model, get_trace
from explainer.ui.frame.widgets import figure, float_slider, header, int_slider
from explainer.ui.sections.compare import compare_section

ctx = page_context("next_token")
t, tr, model, view = ctx.t, ctx.trace, ctx.model, ctx.view
header(view)

c1, c2, c3 = st.columns(3)
with c1:
    temp = float_slider("temp", t["temp"], 0.05, 5.0, 0.05, help=t["temp_help"])
with c2:
    top_k = int_slider("top_k", t["top_k"], 0, 200, help=t["top_k_help"])
with c3:
    top_p = float_slider("top_p", t["top_p"], 0.01, 1.0, 0.01, help=t["top_p_help"])

dist = next_token(model, tr, temp, top_k or None, top_p, show=15)
m = st.columns(4)
part = tokens.part_words(dist.top_bytes[0], dist.context, ctx.common)
m[0].metric(t["top_token"], tokens.shown(dist.top_labels[0]), f"{dist.top_probs[0]:.1%}", delta_color="off",
            help=tokens.markdown_text(part) if part else None)
m[1].metric(t["entropy_before"], f"{dist.entropy_bits:.2f} {t['bits']}", help=t["entropy_help"])
m[2].metric(t["entropy_after"], f"{dist.adjusted_entropy_bits:.2f} {t['bits']}")
m[3].metric(t["remaining"].format(vocab=dist.vocab_size), f"{dist.kept:,}")
if part:
    st.caption(f"{tokens.for_markdown(dist.top_labels[0])}: {tokens.markdown_text(part)}")
figure(figs.distribution_figure(dist, view), "next_dist", dist)

st.subheader(t["nucleus_header"])
curve = nucleus(model, tr, temp, top_k or None, top_p, show=100)
figure(figs.nucleus_figure(curve, view), "next_nucleus", curve)

st.subheader(t["random_header"])
if model.name == RANDOM_GPT2:
    st.info(t["already_random"])
else:
    rand = get_model(RANDOM_GPT2, state.get("device"), ctx.common)
    rand_tr = get_trace(rand, tr.text, int(state.get("max_tokens")))
    both = TrainedVsUntrained(next_token(model, tr, show=10), next_token(rand, rand_tr, show=10),
                              rand.vocab_size == model.vocab_size)
    figure(figs.compare_figure(both, view), "next_compare", both)
    if not both.same_vocabulary:
        st.caption(t["different_vocab"])
    st.caption(t["random_note"].format(bits=both.untrained.entropy_bits, max_bits=math.log2(both.untrained.vocab_size),
                                       vocab=both.untrained.vocab_size))

compare_section(ctx, "next_token")
