"""Learning page glue: the corpus controls, the per-session Trainer, and the live training view.

Each session owns its Trainer (in ``st.session_state``), which trains in its own background
thread; the page only reads ``trainer.snapshot()``, so a run never blocks other users. While
it runs, a fragment redraws the live charts once a second and the rest of the page stays still.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping

import pandas as pd
import streamlit as st
from transformers import PreTrainedTokenizerFast

from explainer.figures import learning as figs
from explainer.learning import ATTENTION_SENTENCE, PROBES, Corpus, TinyConfig, Trainer, build_tokenizer, load_corpus
from explainer.learning.corpus import (MAX_CUSTOM_CHARS, MIN_CUSTOM_LINES, corpus_from_text, custom_sentences,
                                       detect_language)
from explainer.learning.results import AttentionBeforeAfter, LossCurves, ProbesBeforeAfter
from explainer.learning.saving import load_tiny_weights, read_run_info
from explainer.learning.tokenizer import probes_from_lines
from explainer.ui.frame.widgets import figure
from explainer.view import View

SOURCES = ("facts_en", "facts_zh", "custom")
EVAL_EVERY = 20
MIN_TOKENS = 60  # fewer training tokens than this cannot fill one training window twice


@dataclass(frozen=True)
class Setup:
    """What the controls chose: one training run is identified by ``key``."""

    key: tuple[str, str, int]  # (source, hash of the custom text, seed)
    source: str
    corpus: Corpus
    tokenizer: PreTrainedTokenizerFast
    probes: tuple[str, ...]
    attention_sentence: str
    seed: int
    steps: int

    @property
    def builtin(self) -> bool:
        return self.source != "custom"


def _custom_corpus(text: str, t: Mapping[str, str]) -> tuple[Corpus, PreTrainedTokenizerFast] | None:
    """The user's text as a corpus with its own tokenizer; a friendly message (and None) if unusable."""
    if not text.strip():
        st.info(t["custom_empty"])
        return None
    if len(text) > MAX_CUSTOM_CHARS:
        st.info(t["custom_cut"].format(n=MAX_CUSTOM_CHARS))
        text = text[:MAX_CUSTOM_CHARS]
    lines = custom_sentences(text)
    language = detect_language(text)
    if len(lines) < MIN_CUSTOM_LINES:
        st.warning(t["custom_few_lines"].format(n=len(lines), min=MIN_CUSTOM_LINES))
        return None
    corpus = corpus_from_text("\n".join(lines), language)
    tokenizer = build_tokenizer(language, "\n".join(lines))
    n_tokens = sum(len(tokenizer.tokenize(line)) for line in corpus.train)
    if n_tokens < MIN_TOKENS:
        st.warning(t["custom_few_tokens"].format(n=n_tokens, min=MIN_TOKENS))
        return None
    return corpus, tokenizer


def corpus_controls(t: Mapping[str, str], lang: str, running: bool) -> Setup | None:
    """Corpus, seed and steps; None (after a friendly message) when the custom text is unusable."""
    ss = st.session_state
    defaults = {"learn_source": f"facts_{lang}", "learn_seed": 0, "learn_steps": 300, "learn_text": ""}
    for key, value in defaults.items():
        # Streamlit forgets a widget's state on another page: restore it from our own copy.
        ss.setdefault(key, ss.get("_keep_" + key, value))
    cols = st.columns([3, 1, 2])
    source = cols[0].radio(t["corpus"], SOURCES, key="learn_source", horizontal=True, disabled=running,
                           format_func=lambda s: t["source_" + s])
    seed = int(cols[1].number_input(t["seed"], 0, 9999, step=1, key="learn_seed", disabled=running,
                                    help=t["seed_help"]))
    steps = int(cols[2].slider(t["steps"], 20, 1000, step=10, key="learn_steps", help=t["steps_help"]))
    text = ""
    if source == "custom":
        text = st.text_area(t["custom_text"], key="learn_text", height=150, disabled=running,
                            placeholder=t["custom_placeholder"], max_chars=4 * MAX_CUSTOM_CHARS)
    for key in defaults:
        ss["_keep_" + key] = ss.get(key, defaults[key])
    if source == "custom":
        made = _custom_corpus(text, t)
        if made is None:
            return None
        corpus, tokenizer = made
        probes = probes_from_lines(tokenizer, corpus.train) or (corpus.train[0],)
        sentence = min(corpus.train[:20], key=lambda s: abs(len(tokenizer.tokenize(s)) - 8))
    else:
        corpus = load_corpus(source)
        tokenizer = build_tokenizer(corpus.language)
        probes, sentence = PROBES[corpus.language], ATTENTION_SENTENCE[corpus.language]
    st.caption(t["corpus_stats"].format(train=len(corpus.train), heldout=len(corpus.heldout),
                                        vocab=len(tokenizer), language=t["lang_" + corpus.language]))
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12] if source == "custom" else ""
    return Setup((source, digest, seed), source, corpus, tokenizer, probes, sentence, seed, steps)


def session_trainer(setup: Setup) -> Trainer:
    """This session's Trainer for ``setup``: kept across reruns, replaced when corpus or seed change."""
    ss = st.session_state
    held = ss.get("learn_trainer")
    if held is None or held["key"] != setup.key:
        if held is not None:
            held["trainer"].stop()
        trainer = Trainer(setup.corpus, config=TinyConfig(seed=setup.seed), max_steps=setup.steps,
                          eval_every=EVAL_EVERY, probes=setup.probes, attention_sentence=setup.attention_sentence,
                          tokenizer=setup.tokenizer)
        held = ss["learn_trainer"] = {"key": setup.key, "trainer": trainer, "setup": setup}
    trainer = held["trainer"]
    if trainer.max_steps != setup.steps:
        trainer.set_max_steps(setup.steps)
    return trainer


def current_trainer() -> Trainer | None:
    held = st.session_state.get("learn_trainer")
    return held["trainer"] if held else None


def request_restore(folder: str) -> None:
    """Button callback (runs before the widgets): set the controls to a saved run, restore it after."""
    info = read_run_info(folder)
    if info.get("source") not in SOURCES or not isinstance(info.get("step"), int):
        st.session_state["learn_restore_error"] = folder
        return
    ss = st.session_state
    steps = min(max(-(-info["step"] // 10) * 10, 20), 1000)
    for key, value in (("learn_source", info["source"]), ("learn_seed", int(info.get("seed", 0))),
                       ("learn_steps", steps), ("learn_text", str(info.get("text", "")))):
        ss[key] = ss["_keep_" + key] = value
    ss["learn_restore"] = (folder, info)


def restore_pending(trainer: Trainer, setup: Setup, t: Mapping[str, str]) -> None:
    """Load the weights a Load click asked for into this session's (fresh) trainer."""
    ss = st.session_state
    if ss.pop("learn_restore_error", None):
        st.warning(t["load_error"].format(error=t["load_no_info"]))
    pending = ss.pop("learn_restore", None)
    if pending is None:
        return
    folder, info = pending
    try:
        trainer.restore(load_tiny_weights(folder), info["step"], tuple(info.get("train_loss", ())),
                        tuple(tuple(h) for h in info.get("heldout_loss", ())))
        st.success(t["loaded"].format(folder=folder, step=info["step"]))
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
        st.warning(t["load_error"].format(error=err))


def training_buttons(trainer: Trainer, t: Mapping[str, str]) -> None:
    """Start, Pause, Resume, Reset (each enabled only when it means something)."""
    snap = trainer.snapshot()
    paused = not snap.running and 0 < snap.step < snap.max_steps
    cols = st.columns(4)
    cols[0].button(t["start"], type="primary", on_click=trainer.start, key="learn_start", width="stretch",
                   disabled=snap.running or snap.step > 0 or snap.finished)
    cols[1].button(t["pause"], on_click=trainer.pause, key="learn_pause", disabled=not snap.running, width="stretch")
    cols[2].button(t["resume"], on_click=trainer.resume, key="learn_resume", disabled=not paused, width="stretch")
    cols[3].button(t["reset"], on_click=trainer.reset, key="learn_reset", disabled=snap.step == 0 and not snap.running,
                   width="stretch")


def live_training(trainer: Trainer, view: View) -> None:
    """The live part: redrawn every second while training runs, drawn once otherwise."""
    running = trainer.snapshot().running
    st.session_state["learn_live"] = running
    st.fragment(run_every=1.0 if running else None)(_live_view)(trainer, view)


def _live_view(trainer: Trainer, view: View) -> None:
    t = view.t
    snap = trainer.snapshot()
    if st.session_state.get("learn_live") and not snap.running:
        st.session_state["learn_live"] = False
        st.rerun()  # training ended: redraw the whole page (buttons, n-gram comparison) once
    last = f"{snap.train_loss[-1]:.3f}" if snap.train_loss else "–"
    status = "status_running" if snap.running else ("status_done" if snap.finished else
                                                     ("status_paused" if snap.step else "status_ready"))
    st.progress(min(snap.step / max(snap.max_steps, 1), 1.0),
                text=t[status] + " · " + t["progress"].format(step=snap.step, steps=snap.max_steps, loss=last))
    if snap.error:
        st.error(t["train_error"].format(error=snap.error))
    curves = LossCurves.of(snap)
    figure(figs.loss_figure(curves, view), "learn_loss", curves)
    st.subheader(t["probes_section"])
    st.markdown(t["probes_intro"])
    after = snap.latest
    if not snap.running and len(snap.checkpoints) > 2:
        steps = [c.step for c in snap.checkpoints]
        chosen = st.select_slider(t["checkpoint"], steps, value=steps[-1], key=f"learn_ckpt_{len(steps)}")
        after = snap.checkpoints[steps.index(chosen)]
    probes = ProbesBeforeAfter(snap.checkpoints[0], after)
    figure(figs.probes_figure(probes, view), "learn_probes", probes)
    st.subheader(t["samples_section"])
    st.markdown(t["samples_intro"])
    rows = figs.sample_rows(snap.checkpoints[::-1], view)  # newest first
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    _attention(snap, view)


def _attention(snap, view: View) -> None:
    t, common = view.t, view.common
    st.subheader(t["attention_section"])
    st.markdown(t["attention_intro"])
    n_layer, n_head = snap.attention_after.weights.shape[:2]
    cols = st.columns(2)
    layer = cols[0].radio(common["layer"], list(range(n_layer)), horizontal=True, key="learn_layer")
    head = cols[1].radio(common["head"], list(range(n_head)), horizontal=True, key="learn_head")
    figure(figs.attention_figure(AttentionBeforeAfter(snap.attention_before, snap.attention_after, layer, head),
                                 view), "learn_attention")
