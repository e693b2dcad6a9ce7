"""MLP: the feed-forward layer, its neurons on your text, and what one neuron writes."""
import pandas as pd
import streamlit as st

from explainer.analysis.mlp import layer_activations, mlp_overview, neuron_effect, token_neurons, token_window
from explainer.analysis.prediction import token_labels
from explainer.figures import mlp as figs
from explainer.ui import state
from explainer.ui.resources import page_context
from explainer.ui.widgets import choose, figure, header, int_slider, token_picker

ctx = page_context("mlp")
t, tr, model = ctx.t, ctx.trace, ctx.model
header(t, ctx.presenter)
with st.expander(ctx.common["stage.explain_label"]) if ctx.presenter else st.container():   # folded on stage
    st.info(t["swiglu" if model.arch.family == "llama" else "gelu"].format(d_model=tr.d_model, d_mlp=tr.d_mlp))

st.subheader(t["overview_header"])
view = mlp_overview(tr)
figure(figs.overview_figure(view, tr.tokens, t, ctx.presenter), "mlp_overview", labels=ctx.common,
       data={"layer_neurons": view.neurons.tolist(), "peak_activation": view.peak.tolist(),
             "peak_token": view.peak_token.tolist(), "tokens": list(tr.tokens)})

st.subheader(t["layer_header"])
c1, c2 = st.columns(2)
with c1:
    layer = int_slider("layer", ctx.common["layer"], 0, tr.n_layers - 1, stale=ctx.common["stale_value"])
with c2:
    token = token_picker("token", ctx.common["token"], tr.tokens, stale=ctx.common["stale_value"])
acts = layer_activations(tr, layer)
window = token_window(tr.n_tokens, token)
if len(window) < tr.n_tokens:
    st.caption(t["window_note"].format(start=window.start, stop=window.stop - 1, n=tr.n_tokens))
heat = pd.DataFrame(acts.values[list(window)].numpy(), columns=[f"n{n}" for n in acts.neurons])
heat.insert(0, "token", [tr.tokens[i] for i in window])
heat.insert(0, "position", list(window))
figure(figs.layer_heatmap(acts, tr.tokens, window, t, ctx.presenter), "mlp_heatmap", data=heat, labels=ctx.common)

tn = token_neurons(tr, layer, token)
figure(figs.token_neurons_figure(tn, tr.tokens, t, ctx.presenter), "mlp_token", labels=ctx.common,
       data=pd.DataFrame({"neuron": tn.neurons, "activation": tn.values}))

st.subheader(t["neuron_header"])
options = list(dict.fromkeys(tn.neurons + acts.neurons))
asked = state.get("neuron")
if 0 < asked < tr.d_mlp and asked not in options:
    options.append(asked)                       # a deep link to any neuron keeps working
neuron = choose("neuron", t["pick_neuron"], options, format_func=lambda n: t["neuron_option"].format(n=n))
effect = neuron_effect(model, tr, layer, neuron)
up, down = token_labels(model, effect.up_ids), token_labels(model, effect.down_ids)
figure(figs.neuron_effect_figure(effect, up, down, t, ctx.presenter), "mlp_effect", labels=ctx.common,
       data={"layer": layer, "neuron": neuron, "pushes_up": list(zip(up, effect.up_scores)),
             "pushes_down": list(zip(down, effect.down_scores))})
st.caption(t["effect_note"])
figure(figs.neuron_tokens_figure(effect, tr.tokens, window, t, ctx.presenter), "mlp_fires", labels=ctx.common,
       data=pd.DataFrame({"token": tr.tokens, "activation": effect.activations}))
