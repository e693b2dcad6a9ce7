"""Position: how the model knows word order — added learned vectors or rotated queries and keys."""
import streamlit as st

from explainer.analysis import position as pos
from explainer.analysis.qk import query_keys
from explainer.analysis.windows import layer_windows
from explainer.figures import position as figs
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import figure, header, int_slider, token_picker
from explainer.words import position as words

ctx = page_context("position")
t, tr, common, model, view = ctx.t, ctx.trace, ctx.common, ctx.model, ctx.view
header(view)

if tr.rotary is not None:
    st.markdown(t["uses_rotary"].format(model=model.name or "default"))
    bases = pos.rotary_bases(tr, model.context_length)
    st.subheader(t["rotate_section"])
    if not view.presenter:
        st.markdown(words.bases_text(bases, view))
    figure(figs.rotary_frequency_figure(bases, view), "position_frequencies", bases)

    st.subheader(t["curve_section"])
    curves = pos.distance_curves(bases, tr.n_tokens)
    if not view.presenter:
        st.markdown(words.curves_text(curves, view))
    figure(figs.distance_curve_figure(curves, view), "position_distance_curve", curves)

    st.subheader(t["real_section"])
    if not view.presenter:
        st.markdown(t["real_intro"])
    cols = st.columns(3)
    with cols[0]:
        layer = int_slider("layer", common["layer"], 0, tr.n_layers - 1)
    with cols[1]:
        head = int_slider("head", common["head"], 0, tr.n_heads - 1)
    with cols[2]:
        query = token_picker("token", t["query_label"], tr.tokens)
    real = pos.real_distance_scores(query_keys(model, tr, layer), head, query, tr.tokens)
    if len(bases.bases) > 1:
        st.caption(words.real_caption(layer_windows(tr), layer, view))
    figure(figs.real_distance_figure(real, view), "position_real_scores", real)
else:
    table = pos.learned_positions(model)
    st.markdown(t["uses_learned"].format(model=model.name, n=table.n_positions, d=table.d_model))
    st.subheader(t["added_section"])
    if not view.presenter:
        st.markdown(t["added_intro"])
    added = pos.added_positions(tr)
    figure(figs.added_norms_figure(added, view), "position_added", added)

    st.subheader(t["table_section"])
    dims_note = "" if table.dim_stride == 1 else t["dims_note"].format(
        d=table.d_model, dim_stride=table.dim_stride, dim_stride2=2 * table.dim_stride)
    st.markdown(t["table_intro"].format(n=table.n_positions, stride=table.stride, stride2=2 * table.stride,
                                        dims_note=dims_note))
    left, right = st.columns(2) if not view.presenter else (st.container(), st.container())
    with left:
        figure(figs.position_vectors_figure(table, view), "position_vectors", table)
    with right:
        figure(figs.position_similarity_figure(table.similarities, view), "position_similarity", table.similarities)
