"""The logit lens and residual stream on the real SmolLM2-135M."""
from __future__ import annotations

import time

import pytest

import explainer
from explainer.analysis import residual as res
from explainer.analysis.lens import first_layer_with_answer, logit_lens
from explainer.analysis.overview import journey, model_card, scale
from explainer.figures import layers as lfigs
from explainer.figures import overview as ofigs
from explainer.view import View

pytestmark = pytest.mark.integration
PROMPT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(scope="module")
def capitals(default_model):
    return explainer.trace(default_model, PROMPT)


def test_berlin_forms_only_in_the_last_layers(default_model, capitals):
    lens = logit_lens(default_model, capitals)
    assert default_model.tokenizer.decode([int(lens.target_ids[-1])]) == " Berlin"
    first = first_layer_with_answer(lens)
    assert first >= 24                                           # late, as the page's notice says
    assert int(lens.target_ranks[0, -1]) > 100                   # nowhere near the top at the start
    assert float(lens.target_probs[-1, -1]) > 0.5


def test_first_token_is_an_outlier(capitals):
    norms = res.residual_norms(capitals)
    assert norms.first_token_stands_out()


def test_journey_and_card(default_model, capitals):
    j = journey(default_model, capitals)
    assert j.n_tokens == 12 and j.top_label == " Berlin"
    card = model_card(default_model)
    assert card.tied_head and card.parameters.total == 134_515_008
    assert scale(card).names[1] == default_model.name            # just above GPT-1 (117 M)


def test_figures_stay_small_on_a_1024_token_prompt(default_model):
    text = " ".join(f"word{i} and more text" for i in range(600))
    trace = explainer.trace(default_model, text, 1024)
    assert trace.n_tokens == 1024
    lt, ot = View.of("layers"), View.of("overview")
    start = time.perf_counter()
    window = res.cached_lens_readout(default_model, trace, 1008, 1024)
    assert time.perf_counter() - start < 30
    growth = res.answer_growth(window, 1023)
    figs = [lfigs.norms_figure(res.residual_norms(trace), lt, position=1023),
            lfigs.writes_figure(res.block_writes(trace, 1023), lt),
            lfigs.lens_grid_figure(window, lt, position=1023), lfigs.growth_figure(growth, lt),
            ofigs.journey_figure(journey(default_model, trace), ot)]
    sizes = [len(f.to_json()) for f in figs]
    assert sum(sizes) < 2_000_000, sizes
