"""MLP: the feed-forward layer, its neurons on your text, and what one neuron writes."""
import streamlit as st

from explainer.analysis.mlp import (layer_activations, mlp_design, mlp_overview, neuron_effect, token_neurons,
                                   token_window)
from explainer.figures import mlp as figs
from explainer.ui.frame import state
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import choose, figure, header, int_slider, token_picker
from explainer.words import mlp as words

ctx = page_context("mlp")
t, tr, model, view = ctx.t, ctx.trace, ctx.model, ctx.view
header(view)
design = mlp_design(model)
with st.expander(view.common["stage.explain_label"]) if view.presenter else st.container():   # folded on stage
    st.info(words.design(design, view))

st.subheader(t["overview_header"])
overview = mlp_overview(tr)
figure(figs.overview_figure(overview, view), "mlp_overview", overview)

st.subheader(t["layer_header"])
c1, c2 = st.columns(2)
with c1:
    layer = int_slider("layer", ctx.common["layer"], 0, tr.n_layers - 1)
with c2:
    token = token_picker("token", ctx.common["token"], tr.tokens)
window = token_window(tr.n_tokens, token)
acts = layer_activations(tr, layer, window=window)
if len(window) < tr.n_tokens:
    st.caption(t["window_note"].format(start=window.start, stop=window.stop - 1, n=tr.n_tokens))
figure(figs.layer_heatmap(acts, view), "mlp_heatmap", acts)

tn = token_neurons(tr, layer, token)
figure(figs.token_neurons_figure(tn, view), "mlp_token", tn)

st.subheader(t["neuron_header"])
options = list(dict.fromkeys(tn.neurons + acts.neurons))
asked = state.get("neuron")
if 0 < asked < tr.d_mlp and asked not in options:
    options.append(asked)                       # a deep link to any neuron keeps working
neuron = choose("neuron", t["pick_neuron"], options, format_func=lambda n: t["neuron_option"].format(n=n))
effect = neuron_effect(model, tr, layer, neuron, window=window)
figure(figs.neuron_effect_figure(effect, view), "mlp_effect", effect)
st.caption(t["effect_note"])
figure(figs.neuron_tokens_figure(effect.firing, view), "mlp_fires", effect.firing)
