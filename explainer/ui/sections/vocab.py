"""Streamlit glue for the Embeddings page: per-model caches, word inputs, the map, analogies.

Token labels, the embedding matrix and a loaded vocabulary map are remembered on the model
(``explainer.memo``) for the whole server (every session shares them). The map is only *loaded* here; building
it is slow (30–60 s) and happens only when a user asks, behind a progress bar. The
library's per-key lock makes concurrent sessions wait for that one build.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import streamlit as st
import torch

from explainer.analysis import vocab_map
from explainer.analysis.vocabulary import WordTokens, analogy, lookup_word
from explainer.figures import vocabulary as vfig
from explainer.memo import per_model, remembered
from explainer.models import LoadedModel
from explainer.tokens import markdown_text, vocabulary_labels
from explainer.ui.frame import binding, state
from explainer.ui.frame.widgets import figure
from explainer.view import View

PHASES = ("cache", "wait", "pca", "neighbours", "import_umap", "layout", "save", "done")


@per_model
def labels(model: LoadedModel) -> tuple[str, ...]:
    """A legible label for every token id of ``model`` (remembered on the model)."""
    return vocabulary_labels(model)                     # takes the model's lock itself


@per_model
def embedding(model: LoadedModel) -> torch.Tensor:
    """The input embedding matrix (V, d), remembered on the model; treat it as read-only."""
    return model.embedding_matrix()                     # (V, d) float32 on the CPU


def ordinary(model: LoadedModel) -> "np.ndarray":
    """(V,) True for tokens a big vocabulary's map may lay out: not special, unused or byte tokens."""
    return vocab_map.ordinary_tokens(labels(model))


class _NotBuilt(LookupError):
    """Raised instead of returning None so that a miss is never remembered."""


def cached_map(model: LoadedModel) -> vocab_map.VocabMap | None:
    """The model's vocabulary map if it was built before (here or by another session)."""
    path = str(vocab_map._cache_path(model.cache_key))  # the file's place is part of the key

    def load() -> vocab_map.VocabMap:
        found = vocab_map.load_vocab_map(model.cache_key, embedding(model))
        if found is None:
            raise _NotBuilt(path)
        return found
    try:
        return remembered(model, ("vocab_map", path), load)
    except _NotBuilt:
        return None


def build_map(model: LoadedModel, t: Mapping[str, str]) -> vocab_map.VocabMap:
    """Build (or wait for another session's build of) the map, with a progress bar."""
    bar = st.progress(0.0, text=t["phase_cache"])

    def report(fraction: float, phase: str) -> None:
        text = t["phase_" + phase] if phase in PHASES else phase
        bar.progress(min(max(fraction, 0.0), 1.0), text=text)

    vmap = vocab_map.build_vocab_map(embedding(model), model.cache_key, report, ordinary(model))
    bar.empty()
    return vmap


def with_places(model: LoadedModel, vmap: vocab_map.VocabMap, ids: Sequence[int]) -> vocab_map.VocabMap:
    """``vmap`` with a place for each of ``ids`` (tokens a big vocabulary's layout left out)."""
    if vmap.laid_out is None:
        return vmap
    path = str(vocab_map._cache_path(model.cache_key))
    base = remembered(model, ("placement", path), lambda: vocab_map.placement_base(vmap, embedding(model)))
    return vocab_map.place(vmap, embedding(model), ids, base)


def words(model: LoadedModel, names: Sequence[str]) -> list[WordTokens]:
    """Look up each word (how the tokenizer cuts it) under the model's lock."""
    with model.tokenizer_lock:
        return [lookup_word(model.tokenizer, w) for w in names]


def word_input(name: str, label: str, help: str | None = None) -> str:
    """A text box bound to the URL-backed value ``name`` (e.g. ``?word=king``)."""
    chosen = st.text_input(label, key=binding.bind(name, state.get(name)), help=help, max_chars=60)
    state.put(name, chosen.strip()[:60])
    return chosen.strip()


def parse_pairs(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """"cat, dog" per line → [("cat", "dog")]; lines without exactly two words come back as bad."""
    pairs, bad = [], []
    for line in text.splitlines():
        parts = [p for p in re.split(r"[,，、;；/\t]+|\s{2,}", line.strip()) if p.strip()]
        if len(parts) == 1 and " " in parts[0].strip():
            parts = parts[0].split()
        if not line.strip():
            continue
        if len(parts) == 2:
            pairs.append((parts[0].strip(), parts[1].strip()))
        else:
            bad.append(line.strip())
    return pairs, bad


def show_analogy(model: LoadedModel, view: View, words_typed: Sequence[str], key: str) -> None:
    """``a − b + c`` (expected ``e``): the two rankings and a sentence with the expected word's ranks."""
    a, b, c, e = words(model, words_typed)
    res = analogy(embedding(model), labels(model), a, b, c, k=10, expected=e)
    figure(vfig.analogy_figure(res, view), key, res)
    st.markdown(view.t["analogy_rank"].format(word=markdown_text(e.word), rank=res.expected_rank_excluded or "—",
                                              rank_in=res.expected_rank_included, sim=res.expected_similarity))


def map_section(model: LoadedModel, view: View, prompt_ids: Sequence[int], neighbour_ids: Sequence[int],
                word: str) -> None:
    """The map of the whole vocabulary, or a button that builds it (slow, once per model)."""
    t = view.t
    st.markdown(t["map_text"])
    vmap = cached_map(model)
    if vmap is None:
        slot = st.empty()
        with slot.container():
            st.info(t["map_missing"])
            clicked = st.button(t["map_build"], key="emb_build_map", type="primary")
        if clicked:
            slot.empty()
            vmap = build_map(model, t)
    if vmap is not None:
        vmap = with_places(model, vmap, list(prompt_ids) + list(neighbour_ids))
        shown = vocab_map.MapHighlights(vmap, labels(model), tuple(prompt_ids), tuple(neighbour_ids), word)
        figure(vfig.vocab_map_figure(shown, view), "emb_map", shown)
        if vmap.laid_out is None:
            st.caption(t["map_note"].format(n=vmap.n_tokens, s=vmap.build_seconds))
        else:
            st.caption(t["map_note_big"].format(n=vmap.n_tokens, m=int(vmap.laid_out.sum()), s=vmap.build_seconds))
