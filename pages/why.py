"""Why this answer? Which heads, MLP layers and words of the text pushed the prediction, and what
switching them off really does."""
import streamlit as st

from explainer import tokens
from explainer.analysis.compare import compare_distributions
from explainer.analysis.why import switch_off_check
from explainer.figures import why as figs
from explainer.figures.compare import distribution_change_figure
from explainer.ui.frame import state
from explainer.ui.frame.page import page_context
from explainer.ui.frame.shared import get_trace
from explainer.ui.frame.widgets import figure, header
from explainer.ui.sections.why import answer_choice, input_scores, switch_off_choice
from explainer.words import why as words

ctx = page_context("why")
t, model, tr, view = ctx.t, ctx.model, ctx.trace, ctx.view
header(view)

pushes = answer_choice(model, tr, view)
a = pushes.attribution
answer = tokens.for_markdown(pushes.target_label)
m = st.columns(3)
m[0].metric(t["answer"], tokens.shown(pushes.target_label), f"{pushes.probability:.1%}", delta_color="off")
m[1].metric(t["logit"] if pushes.contrast_label is None else t["logit_gap"], f"{a.total:.2f}", help=t["logit_help"])
m[2].metric(t["heads_total"], f"{a.heads.sum():+.2f}", help=t["heads_total_help"])
summary = st.empty()                                  # the sentence, once the words are scored too

cols = st.columns([3, 2])
with cols[0]:
    figure(figs.heads_figure(pushes, view), "why_heads", pushes)
with cols[1]:
    figure(figs.mlps_figure(pushes, view), "why_mlps")
    st.caption(t["sum_note"].format(embedding=a.embedding, heads=a.heads.sum(), mlps=a.mlps.sum(), biases=a.biases,
                                    total=a.total))

st.subheader(t["inputs_header"].format(answer=answer))
inputs = input_scores(model, tr, pushes, view)         # behind the page: a progress line until ready
summary.info(words.sentence(pushes, inputs, view))

st.subheader(t["off_header"])
st.markdown(t["off_intro"])
heads, mlps = switch_off_choice(model, pushes, t)
if not heads and not mlps:
    st.caption(t["nothing_off"])
    st.stop()
with st.spinner(ctx.common["tracing"]):
    after = get_trace(model, tr.text, int(state.get("max_tokens")), heads, mlps)
check = switch_off_check(pushes, after)
c = st.columns(3)
c[0].metric(t["prob_after"].format(answer=tokens.shown(pushes.target_label)), f"{check.probability_after:.1%}",
            f"{100 * (check.probability_after - check.probability_before):+.1f} {t['points']}")
c[1].metric(t["predicted"], f"{check.predicted:+.2f}", help=t["predicted_help"])
c[2].metric(t["measured"], f"{check.measured:+.2f}", help=t["measured_help"])
figure(figs.switch_off_figure(check, view), "why_check", check)
change = compare_distributions(tr.next_token_logits, after.next_token_logits, k=8, model=model)
figure(distribution_change_figure(change, view), "why_change", change)
st.caption(t["kl"].format(kl=change.kl_bits))
