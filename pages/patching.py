"""Where is the answer decided? Activation patching: copy one activation of a clean prompt into a
corrupted twin and see how much of the clean answer comes back, for every layer × position (or head)."""
import streamlit as st

from explainer import tokens
from explainer.analysis.patching import SITES, patched_prediction
from explainer.figures import patching as figs
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import clickable_figure, figure, header
from explainer.ui.sections.patching import clicked, pair_choice, patching_maps, picked_cell
from explainer.words import patching as words

ctx = page_context("patching")
t, model, view = ctx.t, ctx.model, ctx.view
header(view)

clean, corrupted = pair_choice(model, view)
maps, pair = patching_maps(model, clean, corrupted, view)   # the maps behind the page: a progress line until ready
if maps is None:
    if pair is not None:                                      # meanwhile, what the two prompts predict
        figure(figs.prediction_figure(pair, view), "patching_two_runs", pair)
    st.stop()
first = maps["resid_pre"]
(p_clean, p_corrupted), (c_clean, c_corrupted) = first.probs

cols = st.columns([3, 2])
with cols[1]:
    m = st.columns(2)
    m[0].metric(t["answer"], tokens.shown(first.answer_label), f"{p_clean:.1%} → {p_corrupted:.1%}",
                delta_color="off", delta_arrow="off", help=t["answer_help"])
    m[1].metric(t["contrast"], tokens.shown(first.contrast_label), f"{c_clean:.1%} → {c_corrupted:.1%}",
                delta_color="off", delta_arrow="off", help=t["contrast_help"])
    st.caption(words.lead(first, view))
    note = words.flip_note(first, view)
    if note:
        st.info(note)
    st.subheader(t["pick_header"])
    site, layer, index = picked_cell(maps, view)
    pred = patched_prediction(model, maps[site], layer, index)
    figure(figs.prediction_figure(pred, view), "patching_cell", pred)
with cols[0]:
    picked = (layer, index) if site == SITES[0] else None
    clicked(clickable_figure(figs.map_figure(first, view, picked), "patching_resid_pre", first), SITES[0])
    st.info(words.sentence(first, view))

row = st.columns(3)
for column, name in zip(row, SITES[1:]):
    with column:
        result = maps[name]
        picked = (layer, index) if site == name else None
        clicked(clickable_figure(figs.map_figure(result, view, picked, compact=True), f"patching_{name}", result), name)
        st.caption(words.sentence(result, view))
