"""Activation patching on the embedded SmolLM2 and Gemma 3 with the shipped pairs: every pair has one
token count and flips the answer as the README says; the first pair of each language gives the maps
the README describes, equal cell by cell to an independent hook implementation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explainer.analysis.patching import activation_patching, check_pair
from explainer.analysis.patching_pairs import READY_PAIRS
from explainer.analysis.patching_runs import Patch, patched, sources
from explainer.analysis.patching_summary import summarize
from explainer.tokens import token_labels
from tests import patching_reference as ref

pytestmark = pytest.mark.integration

# The flips the README reports: (clean answer, corrupted answer) per model and pair.
FLIPS = {
    "smollm2-135m": {"Germany": (" Berlin", " Rome"), "Eiffel": (" Paris", " Rome"), "Mary and": (" Mary", " John"),
                     "有一天": ("Anna", "Tom")},
    "gemma-3-270m": {"Germany": (" Berlin", " Rome"), "Eiffel": (" Paris", " Rome"), "Mary and": (" Mary", " John"),
                     "有一天": ("Anna", "Tom"), "德国": ("柏", "东京"), "3月之后": ("4", "8")},
}
CASES = [(name, lang, i) for lang, pairs in READY_PAIRS.items() for i, p in enumerate(pairs) for name in p.models]


@pytest.fixture(scope="module")
def models(default_model, gemma_model):
    return {"smollm2-135m": default_model, "gemma-3-270m": gemma_model}


@pytest.mark.parametrize("name, lang, i", CASES)
def test_every_ready_pair_has_one_length_and_flips_the_answer(models, name, lang, i):
    model, pair = models[name], READY_PAIRS[lang][i]
    a, b = check_pair(model, pair.clean, pair.corrupted)                  # same token count, or it raises
    with torch.no_grad():
        top = model.hf_model(input_ids=torch.tensor([a, b])).logits[:, -1].argmax(-1).tolist()
    expected = [v for k, v in FLIPS[name].items() if k in pair.clean]
    assert len(expected) == 1 and token_labels(model, top) == expected[0]


@pytest.fixture(scope="module")
def first_maps(models):
    return {(name, lang): activation_patching(models[name], READY_PAIRS[lang][0].clean, READY_PAIRS[lang][0].corrupted,
                                              "all") for name in models for lang in READY_PAIRS}


# (model, language): the changed word, and the first layer from which only the last position matters.
STORIES = {("smollm2-135m", "en"): (" Germany", 24), ("gemma-3-270m", "en"): (" Germany", 13),
           ("smollm2-135m", "zh"): ("Tom", 24), ("gemma-3-270m", "zh"): ("Tom", 12)}


@pytest.mark.parametrize("key", list(STORIES))
def test_the_answer_moves_from_the_changed_word_to_the_last_one(models, first_maps, key):
    r = first_maps[key]["resid_pre"]
    word, late = STORIES[key]
    s = summarize(r)
    assert r.tokens[s.early.position] == word and s.early.position == r.first_diff
    assert s.early.first == 0 and s.early.last == late - 1 and s.late[0] == late
    n = models[key[0]].n_layers
    assert r.scores[n - 1, -1] > 0.8 and abs(r.scores[:, : r.first_diff]).max() == 0


@pytest.mark.parametrize("key", list(STORIES))
def test_cells_equal_an_independent_hook_implementation(models, first_maps, key):
    model, pair = models[key[0]], READY_PAIRS[key[1]][0]
    a, b = check_pair(model, pair.clean, pair.corrupted)
    rng = np.random.default_rng(0)
    for site, r in first_maps[key].items():
        n, width = r.scores.shape
        first = 0 if site == "heads" else r.first_diff
        cells = r.strongest(3) + [(int(rng.integers(n)), int(rng.integers(first, width))) for _ in range(3)]
        expected = ref.logit_diffs(model.hf_model, a, b, site, r.answer, r.contrast, cells)
        for layer, index in cells:
            assert r.diffs[layer, index] == pytest.approx(expected[layer, index], abs=2e-3), (site, layer, index)


@pytest.mark.parametrize("name", ["smollm2-135m", "gemma-3-270m"])
def test_every_position_of_a_layer_restores_the_clean_run_on_the_real_models(models, name):
    model, pair = models[name], READY_PAIRS["en"][1]
    a, b = check_pair(model, pair.clean, pair.corrupted)
    src = sources(model, a, b)
    layers = [0, model.n_layers // 2, model.n_layers - 1]
    logits = patched(model, src, b, 0, [tuple(Patch("resid_pre", l, p) for p in range(len(a))) for l in layers], None)
    for row in logits:
        assert float((row - src.logits[0]).abs().max()) < 1e-3 * float(src.logits[0].abs().max())
