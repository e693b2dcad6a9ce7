"""Intervene: switch off attention heads or MLP layers and watch the prediction change."""
import streamlit as st

from explainer import tokens
from explainer.analysis.compare import compare_distributions
from explainer.figures.compare import distribution_change_figure
from explainer.ui import state
from explainer.ui.resources import get_trace, page_context
from explainer.ui.widgets import figure, header

ctx = page_context("intervene")
t, m, base, view = ctx.t, ctx.model, ctx.trace, ctx.view
header(view)

heads, bad_heads = state.heads_from_url(state.get("off"), m.n_layers, m.n_heads)
mlps, bad_mlps = state.layers_from_url(state.get("mlp_off"), m.n_layers)
if bad_heads or bad_mlps:
    st.info(t["bad_values"].format(values=", ".join(bad_heads + bad_mlps)))

options = [(l, h) for l in range(m.n_layers) for h in range(m.n_heads)]
cols = st.columns([3, 2])
chosen = cols[0].multiselect(t["heads_label"], options, default=sorted(heads),
                             format_func=lambda lh: t["head_option"].format(layer=lh[0], head=lh[1]),
                             help=t["heads_help"], key=f"heads_{m.name}")
chosen_mlps = cols[1].multiselect(t["mlps_label"], list(range(m.n_layers)), default=sorted(mlps),
                                  format_func=lambda l: t["mlp_option"].format(layer=l), key=f"mlps_{m.name}")
state.put("off", state.heads_to_url(frozenset(chosen)))
state.put("mlp_off", state.layers_to_url(chosen_mlps))

if not chosen and not chosen_mlps:
    st.info(t["nothing_off"])
    st.stop()

with st.spinner(ctx.common["tracing"]):
    after = get_trace(m, base.text, int(state.get("max_tokens")), frozenset(chosen), frozenset(chosen_mlps))
change = compare_distributions(base.next_token_logits, after.next_token_logits, k=8, model=m)

c = st.columns(3)
c[0].metric(t["top_before"], tokens.shown(change.top_labels[0]))
c[1].metric(t["top_after"], tokens.shown(change.top_labels[1]), delta=t["changed"] if change.top_changed else t["same"],
            delta_color="inverse" if change.top_changed else "off")
c[2].metric(t["moved"], f"{change.total_variation:.1%}", help=t["moved_help"])
figure(distribution_change_figure(change, view), "intervene_change", change)
st.caption(t["kl"].format(kl=change.kl_bits))
