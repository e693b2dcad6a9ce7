"""The shared sidebar: language, model, prompt, length, device, presenter mode."""
from __future__ import annotations

from typing import Mapping

import streamlit as st
import torch

from explainer import offer
from explainer.models import DEFAULT_NAME as SMOLLM2
from explainer.models import MULTILINGUAL_NAME as GEMMA3
from explainer.models import RANDOM_GPT2, context_length_of
from explainer.text import texts
from explainer.ui.frame import binding, params, state
from explainer.ui.stage import tour

LANG_NAMES = {"en": "English", "zh": "简体中文"}
MODEL_CHOICES = (SMOLLM2, GEMMA3, RANDOM_GPT2, "other")
LENGTHS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16_384, 32_768)


def sidebar() -> None:
    """Draw the sidebar; every value goes to URL-backed state.

    The language comes first and the other labels follow the value it has on this run,
    so a switch relabels the whole sidebar at once. A default prompt and a model the user did
    not choose follow the language (中文 reads a Chinese sentence with the multilingual model).
    """
    with st.sidebar:
        before = state.get("lang")
        lang = st.radio("Language / 语言", list(LANG_NAMES), key=binding.bind("lang", before),
                        format_func=LANG_NAMES.get, horizontal=True)
        state.put("lang", lang)
        if lang != before:
            _follow_language()
        common = texts("common", lang)
        _model_choice(common)
        _prompt_box(common)
        _length(common)
        devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        device = state.get("device")
        if device not in devices:
            state.push("device", device := "auto")
        state.put("device", st.selectbox(common["device"], devices, key=binding.bind("device", device)))
        tour.start_button(common)
        img = state.get("img")
        state.put("img", st.radio(common["image_format"], ["png", "svg"], key=binding.bind("img", img), horizontal=True,
                                  format_func=str.upper, help=common["image_format_help"]))
        state.put("presenter", st.toggle(common["presenter"], key=binding.bind("presenter", bool(state.get("presenter"))),
                                         help=common["presenter_help"]))


def _follow_language() -> None:
    """After a language switch: the default prompt and an unchosen model follow it (their widgets too)."""
    for name in params.LANGUAGE_DEFAULTS:
        if state.follows_language(name):
            state.push(name, state.get(name))
    if not state.get("model"):
        binding.forget_widget("model_choice")       # re-seeded below with the new language's model


def _model_choice(common: Mapping[str, str]) -> None:
    """The model box: the embedded models, the untrained one and any other name; on a server with
    a model list (LLM_EXPLAINER_MODELS) exactly those, and no box to type another."""
    chosen, name, options = state.get("model"), state.model_name(), offer.choices(MODEL_CHOICES)
    choice = name if name in options and name != "other" else "other" if "other" in options else options[0]
    labels = {SMOLLM2: common["model_smollm2"], GEMMA3: common["model_gemma3"], RANDOM_GPT2: common["model_random"],
              "other": common["model_other"]}

    def picked() -> None:                        # only a user's own pick is stored (and then kept)
        value = st.session_state[binding.widget_key("model_choice")]
        state.put("model", "" if value == "other" else value)
    picked_now = st.selectbox(common["model"], options, key=binding.bind("model_choice", choice),
                              format_func=lambda m: labels.get(m, m), on_change=picked)
    if picked_now in (SMOLLM2, GEMMA3):
        st.caption(common[f"model_{'smollm2' if picked_now == SMOLLM2 else 'gemma3'}_line"])
    if picked_now == "other":
        typed = st.text_input(common["model_id"], key=binding.bind("model_custom", chosen if choice == "other" else ""),
                              placeholder="gpt2 · HuggingFaceTB/SmolLM2-135M · /path/to/folder",
                              help=common["model_id_help"])
        state.put("model", typed.strip() or "")


def _prompt_box(common: Mapping[str, str]) -> None:
    prompt = st.text_area(common["prompt"], key=binding.bind("prompt", state.prompt()), height=110,
                          max_chars=params.MAX_PROMPT_CHARS, help=common["prompt_help"])
    state.put("prompt", prompt)
    examples = [common["example_1"], common["example_2"], common["example_3"]]
    cols = st.columns(len(examples))
    for i, (col, example) in enumerate(zip(cols, examples)):
        if col.button(common[f"example_{i + 1}_label"], key=f"example_{i}", width="stretch"):
            state.push("prompt", example)
            st.rerun()


def _length(common: Mapping[str, str]) -> None:
    """The longest text, in tokens, up to the model's whole context (SmolLM2 8,192, Gemma 3 32,768)."""
    limit = min(params.MAX_TOKENS, context_length_of(state.model_name()) or params.MAX_TOKENS)
    sizes = [s for s in LENGTHS if s <= limit]
    sizes += [limit] if not sizes or sizes[-1] < limit else []
    current = min(sizes, key=lambda s: abs(s - int(state.get("max_tokens"))))
    if current != state.get("max_tokens"):
        state.push("max_tokens", current)
    state.put("max_tokens", st.select_slider(common["max_tokens"], sizes, key=binding.bind("max_tokens", current),
                                             help=common["max_tokens_help"]))
