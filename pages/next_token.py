"""Next token: the softmax over the whole vocabulary and how sampling settings reshape it."""
import math

import pandas as pd
import streamlit as st

from explainer.analysis.prediction import next_token_distribution, nucleus_curve, token_labels
from explainer.figures import prediction as figs
from explainer.models import RANDOM_GPT2
from explainer.ui import state
from explainer.ui.compare import compare_section
from explainer.ui.resources import get_model, get_trace, page_context
from explainer.ui.widgets import figure, float_slider, header, int_slider

ctx = page_context("next_token")
t, tr, model = ctx.t, ctx.trace, ctx.model
header(t, ctx.presenter)

c1, c2, c3 = st.columns(3)
with c1:
    temp = float_slider("temp", t["temp"], 0.05, 5.0, 0.05, help=t["temp_help"])
with c2:
    top_k = int_slider("top_k", t["top_k"], 0, 200, help=t["top_k_help"], stale=ctx.common["stale_value"])
with c3:
    top_p = float_slider("top_p", t["top_p"], 0.01, 1.0, 0.01, help=t["top_p_help"])

logits = tr.next_token_logits
dist = next_token_distribution(logits, temp, top_k or None, top_p, show=15)
labels = token_labels(model, dist.top_ids)
m = st.columns(4)
m[0].metric(t["top_token"], f"“{labels[0]}”", f"{dist.top_probs[0]:.1%}", delta_color="off")
m[1].metric(t["entropy_before"], f"{dist.entropy_bits:.2f} {t['bits']}", help=t["entropy_help"])
m[2].metric(t["entropy_after"], f"{dist.adjusted_entropy_bits:.2f} {t['bits']}")
m[3].metric(t["remaining"].format(vocab=dist.vocab_size), f"{dist.kept:,}")

table = pd.DataFrame({"rank": range(1, len(labels) + 1), "token": labels, "id": dist.top_ids,
                      "probability": dist.top_probs, "after_settings": dist.top_adjusted})
figure(figs.distribution_figure(dist, labels, t, ctx.presenter), "next_dist", data=table, labels=ctx.common)

st.subheader(t["nucleus_header"])
curve = nucleus_curve(logits, temp, top_k or None, top_p, show=100)
curve_labels = token_labels(model, curve.ids)
figure(figs.nucleus_figure(curve, curve_labels, t, ctx.presenter), "next_nucleus", labels=ctx.common,
       data=pd.DataFrame({"token": curve_labels, "id": curve.ids, "probability": curve.probs,
                          "cumulative": curve.cumulative, "kept": curve.kept}))

st.subheader(t["random_header"])
if model.name == RANDOM_GPT2:
    st.info(t["already_random"])
else:
    rand = get_model(RANDOM_GPT2, state.get("device"), ctx.common)
    rand_tr = get_trace(rand, tr.text, int(state.get("max_tokens")))
    rdist = next_token_distribution(rand_tr.next_token_logits, show=10)
    rlabels = token_labels(rand, rdist.top_ids)
    figure(figs.compare_figure(dist, labels[:10], rdist, rlabels, t, ctx.presenter), "next_compare",
           labels=ctx.common, data={"trained": list(zip(labels[:10], dist.top_probs[:10])),
                                    "untrained": list(zip(rlabels, rdist.top_probs))})
    if rand.vocab_size != model.vocab_size:
        st.caption(t["different_vocab"])
    st.caption(t["random_note"].format(bits=rdist.entropy_bits, max_bits=math.log2(rdist.vocab_size),
                                       vocab=rdist.vocab_size))

compare_section(ctx, "next_token")
