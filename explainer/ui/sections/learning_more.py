"""Learning page sections after the live run: n-gram baseline, GPT vs BERT, fine-tuning, save and load.

Results that cost training time are kept per session under the run's key
(:mod:`explainer.ui.frame.session`), so a rerun (any widget) never trains again.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import pandas as pd
import streamlit as st

from explainer import registry
from explainer.figures import learning as figs
from explainer.learning import (TinyConfig, Trainer, attention_mask_matrix, fill_blank, fine_tune, finetune_corpus,
                                generate_text, next_token_distribution, ngram_report, stream_tokens,
                                train_objectives, unseen_continuations)
from explainer.learning.results import (FillTheBlank, HeldoutScores, Masks, ObjectiveLosses, distribution_dict,
                                        probe_panels)
from explainer.learning.saving import save_tiny_model, saved_runs, write_run_info
from explainer.paths import cache_dir
from explainer.ui.frame import binding, session, state
from explainer.ui.frame.widgets import figure
from explainer.ui.sections.learning import Setup, request_restore
from explainer.view import View

ORDER_NAMES = {1: "unigram", 2: "bigram", 3: "trigram"}
FILL_EXAMPLES = {"en": "the [MASK] says moo .", "zh": "小[MASK]会喵喵叫。"}


def _progress(bar: Any, text: str) -> Callable[[int, int], None]:
    return lambda done, total: bar.progress(done / max(total, 1), text=text.format(done=done, total=total))


def _neural_view(trainer: Trainer, setup: Setup) -> dict[str, Any]:
    """The tiny GPT's full next-token distributions for the probes, and the n-gram failures it survives."""
    model, tok = trainer.copy_model(), trainer.tokenizer
    probs = {p: distribution_dict(next_token_distribution(model, tok, p, k=len(tok))) for p in setup.probes}
    report = ngram_report(tok, setup.corpus.train, setup.corpus.heldout, setup.probes)
    unseen = unseen_continuations(report.models[2], stream_tokens(tok, setup.corpus.heldout), model, tok, limit=8)
    return {"probs": probs, "report": report, "unseen": unseen}


def ngram_section(trainer: Trainer, setup: Setup, view: View) -> None:
    t = view.t
    st.header(t["ngram_section"])
    st.markdown(t["ngram_intro"])
    snap = trainer.snapshot()
    found = session.kept("learn_ngram", (setup.key, snap.step), lambda: _neural_view(trainer, setup))
    report = found["report"]
    tabs = st.tabs([t[ORDER_NAMES[n]] for n in report.models])
    for tab, (n, model) in zip(tabs, report.models.items()):
        tab.dataframe(pd.DataFrame(figs.count_rows(model, view)), hide_index=True, width="stretch")
    view = view.adding(neural=t["neural"].format(step=snap.step))        # the tiny GPT's name, at this step
    series = {ORDER_NAMES[n]: {p: dict(report.probes[p][n]) for p in setup.probes} for n in report.models}
    models = probe_panels(setup.probes, {**series, "neural": found["probs"]})
    figure(figs.compare_figure(models, view), "learn_ngram_probes", models)
    if snap.running:
        st.caption(t["ngram_running"])
    scores = {ORDER_NAMES[n]: s.cross_entropy for n, s in report.heldout.items()}
    if snap.heldout_loss and setup.corpus.heldout:
        heldout = HeldoutScores({**scores, "neural": snap.heldout_loss[-1][1]})
        figure(figs.heldout_figure(heldout, view), "learn_heldout", heldout)
    else:
        st.info(t["no_heldout"])
    st.markdown(t["unseen_intro"])
    if found["unseen"] and snap.step:
        st.dataframe(pd.DataFrame(figs.unseen_rows(found["unseen"], view)), hide_index=True, width="stretch")
    else:
        st.info(t["unseen_none"])


def objectives_section(trainer: Trainer, setup: Setup, view: View) -> None:
    t = view.t
    st.header(t["objectives_section"])
    st.markdown(t["objectives_intro"])
    tok = trainer.tokenizer
    tokens = tuple(tok.tokenize(setup.attention_sentence)[:12])
    masks = Masks(tokens, attention_mask_matrix("gpt", len(tokens)), attention_mask_matrix("bert", len(tokens)))
    figure(figs.masks_figure(masks, view), "learn_masks")
    cols = st.columns([1, 3])
    steps = cols[0].select_slider(t["objectives_steps"], [50, 100, 200, 400, 600], value=400,
                                  key="learn_obj_steps")
    key = (setup.key, steps)
    if cols[1].button(t["objectives_button"].format(steps=steps), key="learn_obj_go"):
        bar = st.progress(0.0, text=t["objectives_progress"].format(done=0, total=steps))
        result = train_objectives(setup.corpus, steps=steps, config=TinyConfig(seed=setup.seed), tokenizer=tok,
                                  progress=_progress(bar, t["objectives_progress"]))
        bar.empty()
        session.keep("learn_objectives", key, result)
    result = session.stored("learn_objectives", key)
    if result is None:
        st.info(t["objectives_hint"])
        return
    losses = ObjectiveLosses(tuple(result.gpt_loss), tuple(result.bert_loss))
    figure(figs.objectives_loss_figure(losses, view), "learn_obj_loss", losses)
    _what_each_can_do(result, setup, view)


def _what_each_can_do(result: Any, setup: Setup, view: View) -> None:
    t = view.t
    tok = result.tokenizer
    default = FILL_EXAMPLES[setup.corpus.language] if setup.builtin else setup.probes[0] + f" {tok.mask_token}"
    text = st.text_input(t["fill_input"], value=default, key=f"learn_fill_{setup.source}", help=t["fill_help"])
    if tok.mask_token not in text:
        st.warning(t["fill_no_mask"].format(mask=tok.mask_token))
        return
    left = text.split(tok.mask_token)[0].strip()
    if not tok.tokenize(left):
        st.warning(t["fill_no_left"])
        return
    blank = FillTheBlank(left, next_token_distribution(result.gpt, tok, left).top, tuple(fill_blank(result.bert, tok,
                                                                                                     text)))
    figure(figs.candidates_figure(blank, view), "learn_fill", blank)
    st.markdown(t["continue_result"].format(prompt=left, text=generate_text(result.gpt, tok, left, 8)))


def finetune_section(trainer: Trainer, setup: Setup, view: View) -> None:
    t = view.t
    st.header(t["finetune_section"])
    st.markdown(t["finetune_intro"])
    snap = trainer.snapshot()
    if not setup.builtin:
        st.info(t["finetune_builtin_only"])
        return
    if snap.step == 0:
        st.info(t["finetune_train_first"])
        return
    cols = st.columns([1, 3])
    steps = cols[0].select_slider(t["finetune_steps"], [30, 60, 100, 200], value=100, key="learn_ft_steps")
    key = (setup.key, snap.step, steps)
    if cols[1].button(t["finetune_button"].format(steps=steps, step=snap.step), key="learn_ft_go"):
        bar = st.progress(0.0, text=t["finetune_progress"].format(done=0, total=steps))
        result = fine_tune(trainer.copy_model(), trainer.tokenizer, finetune_corpus(setup.corpus.language),
                           steps=steps, config=TinyConfig(seed=setup.seed), probes=setup.probes,
                           progress=_progress(bar, t["finetune_progress"]))
        bar.empty()
        session.keep("learn_finetune", key, _finetune_view(result, trainer, setup, t))
    tuned = session.stored("learn_finetune", key)
    if tuned is None:
        st.info(t["finetune_hint"])
        return
    models = probe_panels(setup.probes, {"before_ft": tuned["before"], "after_ft": tuned["after"]})
    figure(figs.compare_figure(models, view), "learn_finetune", models)
    st.markdown(t["finetune_changed"].format(n=len(tuned["changed"]), total=len(setup.probes)))
    st.dataframe(pd.DataFrame(tuned["rows"]), hide_index=True, width="stretch")


def _finetune_view(result: Any, trainer: Trainer, setup: Setup, t: Mapping[str, str]) -> dict[str, Any]:
    tok = trainer.tokenizer
    full = {name: {p: distribution_dict(next_token_distribution(m, tok, p, k=len(tok))) for p in setup.probes}
            for name, m in (("before", result.base), ("after", result.tuned))}
    rows = [{t["col_prompt"]: p, t["before_ft"]: generate_text(result.base, tok, p, 8),
             t["after_ft"]: generate_text(result.tuned, tok, p, 8)} for p in setup.probes]
    return {**full, "changed": result.changed, "rows": rows, "loss": result.loss}


def run_info(trainer: Trainer, setup: Setup) -> dict[str, Any]:
    """What the page needs to bring a saved run back: corpus, seed, step and the loss history."""
    snap = trainer.snapshot()
    return {"source": setup.source, "text": st.session_state.get("learn_text", "") if not setup.builtin else "",
            "language": setup.corpus.language, "seed": setup.seed, "step": snap.step,
            "train_loss": list(snap.train_loss), "heldout_loss": [list(h) for h in snap.heldout_loss],
            "probes": list(setup.probes)}


def save_section(trainer: Trainer, setup: Setup, t: Mapping[str, str]) -> None:
    st.header(t["save_section"])
    st.markdown(t["save_intro"])
    snap, root = trainer.snapshot(), cache_dir("learning")
    if st.button(t["save_button"].format(step=snap.step), key="learn_save", disabled=snap.step == 0):
        folder = root / f"tiny-{setup.source}-seed{setup.seed}-step{snap.step}"
        save_tiny_model(trainer, folder)
        write_run_info(folder, run_info(trainer, setup))
        st.session_state["learn_saved"] = (str(folder), setup.attention_sentence)
    saved = st.session_state.get("learn_saved")
    if saved:
        st.success(t["saved"].format(folder=saved[0]))
        if st.button(t["explore_button"], key="learn_explore"):
            explore(*saved)
    runs = saved_runs(root)
    if not runs:
        return
    cols = st.columns([3, 1])
    pick = cols[0].selectbox(t["load_pick"], runs, format_func=lambda p: p.name, key="learn_load_pick")
    cols[1].button(t["load_button"], key="learn_load", on_click=request_restore, args=(str(pick),), width="stretch")


def explore(folder: str, prompt: str) -> None:
    """Make the saved tiny model the app's model (with a sentence it knows) and go to the overview."""
    state.push("model", folder)
    state.push("prompt", prompt)
    for name in ("model_choice", "model_custom"):
        binding.forget_widget(name)  # the sidebar shows "other: <folder>" on its next run
    st.switch_page(registry.DEFAULT.file)
