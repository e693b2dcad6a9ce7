"""The Embeddings page's claims, checked on the real SmolLM2-135M input embeddings."""
from __future__ import annotations

import numpy as np
import pytest

from explainer.analysis import vocabulary as voc
from explainer.tokens import vocabulary_labels

pytestmark = pytest.mark.integration


def _setup(model):
    labels = vocabulary_labels(model)
    emb = model.embedding_matrix()                                   # (V, d)
    with model.tokenizer_lock:
        words = {w: voc.lookup_word(model.tokenizer, w) for w in
                 ("cat", "dog", "hamburger", "king", "man", "woman", "queen",
                  "Paris", "France", "Italy", "Rome", "猫")}
    return labels, emb, words


def test_similarity_neighbours_and_analogies(default_model):
    labels, emb, w = _setup(default_model)
    cat_dog, cat_burger = voc.pair_similarity(emb, [(w["cat"], w["dog"]), (w["cat"], w["hamburger"])])
    assert cat_dog.similarity > cat_burger.similarity + 0.1
    assert w["hamburger"].split and w["猫"].split and not w["king"].split

    nb = voc.nearest_neighbours(emb, labels, w["king"], k=10)
    e = emb.numpy().astype(np.float64)
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    sims = unit @ unit[w["king"].ids[0]]
    sims[w["king"].ids[0]] = -np.inf
    assert list(nb.ids) == list(np.argsort(-sims)[:10])             # brute force agrees
    assert {" queen", " prince", " emperor"} & set(nb.labels)       # royalty nearby

    royal = voc.analogy(emb, labels, w["king"], w["man"], w["woman"], expected=w["queen"])
    assert royal.expected_rank_excluded == 1
    capital = voc.analogy(emb, labels, w["Paris"], w["France"], w["Italy"], expected=w["Rome"])
    assert capital.expected_rank_excluded > 10                       # the page's "where it fails"
