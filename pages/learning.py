"""Learning: watch a tiny GPT learn from random weights, beside n-grams, BERT and fine-tuning.

Uses ``start_page`` (not ``page_context``): nothing here needs the big model, so the page
works while it loads. Each session trains its own tiny model in a background thread.
"""
import streamlit as st

from explainer.ui.frame.page import start_page
from explainer.ui.frame.widgets import header
from explainer.ui.sections import learning as ui
from explainer.ui.sections import learning_more as sections

view = start_page("learning")
t = view.t
header(view)

st.header(t["train_section"])
with st.expander(view.common["stage.explain_label"]) if view.presenter else st.container():   # folded on stage
    st.markdown(t["train_intro"])
running = (trainer := ui.current_trainer()) is not None and trainer.snapshot().running
setup = ui.corpus_controls(t, view.lang, running)
if setup is None:                     # the custom text is unusable: the message is already shown
    st.stop()
trainer = ui.session_trainer(setup)
ui.restore_pending(trainer, setup, t)
ui.training_buttons(trainer, t)
ui.live_training(trainer, view)

sections.ngram_section(trainer, setup, view)
sections.objectives_section(trainer, setup, view)
sections.finetune_section(trainer, setup, view)
sections.save_section(trainer, setup, t)
