"""Overview: the whole journey from text to next token, with this prompt's live shapes."""
import streamlit as st

from explainer.analysis.overview import journey, model_card, scale
from explainer.figures.overview import journey_figure, parameters_figure, scale_figure
from explainer.numbers import human
from explainer.registry import journey_links
from explainer.tokens import for_markdown, markdown_text
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import figure, header
from explainer.words import overview as words

ctx = page_context("overview")
t, view = ctx.t, ctx.view
trip = journey(ctx.model, ctx.trace)
card = model_card(ctx.model)
sizes = scale(card)
notice = t["notice"].format(n_chars=trip.n_chars, n_tokens=trip.n_tokens, d_model=trip.d_model,
                            n_layers=trip.n_layers, vocab=f"{trip.vocab_size:,}", top=for_markdown(trip.top_label),
                            top_prob=f"{trip.top_prob:.1%}", total=human(card.parameters.total))
intro = t["intro"].format(n_tokens=trip.n_tokens, d_model=trip.d_model)   # the example is the diagram's own
header(view.adding(notice=notice, intro=intro))

st.subheader(t["diagram_title"])
figure(journey_figure(trip, view), "overview_journey", trip)
st.markdown(f"**{t['links_title']}**")
link_columns = st.columns(4)
for i, linked in enumerate(journey_links()):                # the registry's pages, in the journey's order
    link_columns[i % 4].page_link(linked.file, label=view.texts_of(linked.slug)["link"], icon=linked.icon)

st.subheader(t["card_title"])
for col, (label, value) in zip(st.columns(4) * 3, words.card_values(card, view)):
    col.metric(label, value)
licence = f" · {t['card_licence']}: {markdown_text(card.licence)}" if card.licence else ""
st.caption(f"{t['card_name']}: {markdown_text(card.name)} ({card.family}) · {t['card_device']}: {card.device}{licence}")
if not view.presenter:
    st.markdown(t["design_title"] + "\n\n" + words.design_notes(card, view))

left, right = st.columns(2)
with left:
    figure(parameters_figure(card, view), "overview_params", card)
    if card.tied_head:
        st.caption(t["tied_note"])
with right:
    figure(scale_figure(sizes, view), "overview_scale", sizes)
    st.caption(t["scale_note"].format(ratio=max(sizes.totals) / card.parameters.total))
