"""Streamlit glue for the Embeddings page: per-model caches, word inputs, the map, analogies.

Token labels, the embedding matrix and a loaded vocabulary map are remembered on the model
(``explainer.memo``) for the whole server (every session shares them). The map is only *loaded*
here; building it is slow (30–60 s) and happens only when a user asks, as a background job
(:mod:`explainer.ui.frame.background`): the rest of the page works meanwhile, every session that
opens the page while it is built sees the same progress line, and the build runs to its end even
if everyone leaves (it is saved for all).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import streamlit as st
import torch

from explainer.analysis import vocab_map
from explainer.analysis.vocabulary import WordTokens, analogy, lookup_word
from explainer.figures import vocabulary as vfig
from explainer.jobs import runner
from explainer.memo import per_model, remembered
from explainer.models import LoadedModel
from explainer.tokens import markdown_text, vocabulary_labels
from explainer.ui.frame import binding, session, state
from explainer.ui.frame.background import behind
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


def _map_job(model: LoadedModel) -> tuple:
    """What names a map's build: the model and the file it is written to."""
    return "vocab_map", model.cache_key, str(vocab_map._cache_path(model.cache_key))


def build_map(model: LoadedModel, view: View) -> vocab_map.VocabMap | None:
    """The map once built: the build (or another session's) runs behind the page with a progress line."""
    t = view.t
    vectors, laid_out = embedding(model), ordinary(model)          # remembered on the model: made in the page's run
    status = behind("embeddings.map", _map_job(model),
                    lambda progress: vocab_map.build_vocab_map(vectors, model.cache_key, progress, laid_out),
                    t["map_building"], view.common, finish=True, messages={p: t["phase_" + p] for p in PHASES})
    if status.state == "failed":
        st.warning(view.common["jobs_failed"].format(error=status.error))
    return status.result


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
    building = runner().poll(_map_job(model))
    if vmap is None and ((building is not None and building.pending) or session.stored("_map_asked", _map_job(model))):
        vmap = build_map(model, view)                             # asked here, or someone is building it
    elif vmap is None:
        st.info(t["map_missing"])
        if st.button(t["map_build"], key="emb_build_map", type="primary"):
            session.keep("_map_asked", _map_job(model), True)
            st.rerun()
    if vmap is not None:
        vmap = with_places(model, vmap, list(prompt_ids) + list(neighbour_ids))
        shown = vocab_map.MapHighlights(vmap, labels(model), tuple(prompt_ids), tuple(neighbour_ids), word)
        figure(vfig.vocab_map_figure(shown, view), "emb_map", shown)
        if vmap.laid_out is None:
            st.caption(t["map_note"].format(n=vmap.n_tokens, s=vmap.build_seconds))
        else:
            st.caption(t["map_note_big"].format(n=vmap.n_tokens, m=int(vmap.laid_out.sum()), s=vmap.build_seconds))
