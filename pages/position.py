"""Position: how the model knows word order — added learned vectors or rotated queries and keys."""
import pandas as pd
import streamlit as st

from explainer.analysis import position as pos
from explainer.analysis.qk import query_keys
from explainer.figures import position as figs
from explainer.ui.resources import page_context
from explainer.ui.widgets import figure, header, int_slider, token_picker

ctx = page_context("position")
t, tr, common, model = ctx.t, ctx.trace, ctx.common, ctx.model
header(t, ctx.presenter)

if tr.rotary is not None:
    st.markdown(t["uses_rotary"].format(model=model.name or "default"))
    freqs = pos.rotary_frequencies(tr.rotary)
    st.subheader(t["rotate_section"])
    if not ctx.presenter:
        st.markdown(t["rotate_intro"].format(hd=freqs.head_dim, pairs=len(freqs.inv_freq), theta=freqs.theta))
    figure(figs.rotary_frequency_figure(freqs, t, ctx.presenter), "position_frequencies",
           data=pd.DataFrame({"pair": range(len(freqs.inv_freq)), "radians_per_token": freqs.inv_freq,
                              "tokens_per_turn": freqs.wavelength}), labels=common)

    st.subheader(t["curve_section"])
    if not ctx.presenter:
        st.markdown(t["curve_intro"])
    curve = pos.rotary_distance_curve(tr.rotary, max_distance=max(256, tr.n_tokens))
    figure(figs.distance_curve_figure(curve, t, ctx.presenter), "position_distance_curve",
           data=pd.DataFrame({"distance": curve.distance, "one_vector": curve.one_pair, "average": curve.average}),
           labels=common)

    st.subheader(t["real_section"])
    if not ctx.presenter:
        st.markdown(t["real_intro"])
    cols = st.columns(3)
    with cols[0]:
        layer = int_slider("layer", common["layer"], 0, tr.n_layers - 1, stale=common["stale_value"])
    with cols[1]:
        head = int_slider("head", common["head"], 0, tr.n_heads - 1, stale=common["stale_value"])
    with cols[2]:
        query = token_picker("token", t["query_label"], tr.tokens, stale=common["stale_value"])
    real = pos.real_distance_scores(query_keys(model, tr, layer), head, query)
    figure(figs.real_distance_figure(real, tr.tokens, t, ctx.presenter), "position_real_scores",
           data=pd.DataFrame({"distance": real.distance, "key_position": query - real.distance,
                              "key": [tr.tokens[query - d] for d in real.distance],
                              "score_rotated": real.rotated, "score_unrotated": real.unrotated}), labels=common)
else:
    table = pos.learned_positions(model)
    st.markdown(t["uses_learned"].format(model=model.name, n=table.n_positions, d=table.d_model))
    st.subheader(t["added_section"])
    if not ctx.presenter:
        st.markdown(t["added_intro"])
    added = pos.added_positions(tr)
    figure(figs.added_norms_figure(added, tr.tokens, t, ctx.presenter), "position_added",
           data=pd.DataFrame({"position": range(tr.n_tokens), "token": tr.tokens, "token_norm": added.token_norm,
                              "position_norm": added.position_norm, "sum_norm": added.sum_norm}), labels=common)

    st.subheader(t["table_section"])
    dims_note = "" if table.dim_stride == 1 else t["dims_note"].format(
        d=table.d_model, dim_stride=table.dim_stride, dim_stride2=2 * table.dim_stride)
    st.markdown(t["table_intro"].format(n=table.n_positions, stride=table.stride, stride2=2 * table.stride,
                                        dims_note=dims_note))
    left, right = st.columns(2) if not ctx.presenter else (st.container(), st.container())
    with left:
        figure(figs.position_vectors_figure(table, t, ctx.presenter), "position_vectors",
               data={"positions": list(table.positions), "dims": list(table.dims),
                     "vectors": figs.rounded(table.vectors)}, labels=common)
    with right:
        figure(figs.position_similarity_figure(table, t, ctx.presenter), "position_similarity",
               data={"positions": list(table.positions), "cosine": figs.rounded(table.similarity, 3)},
               labels=common)
