"""Attribution on the real models: SmolLM2-135M (the default) and Gemma 3 270M (Chinese)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import attribution_inputs as ai
from explainer.analysis.attribution import direct_logit_attribution, top_components
from explainer.analysis.attribution_inputs import input_attribution

pytestmark = pytest.mark.integration
PROMPT = "The capital of France is Paris. The capital of Germany is"
ZH_PROMPT = "法国的首都是巴黎。德国的首都是"


@pytest.fixture(scope="module")
def capitals(default_model):
    return explainer.trace(default_model, PROMPT)


def _answer_probability(model, heads_off):
    t = explainer.trace(model, PROMPT, ablate_heads=heads_off)
    return float(torch.softmax(t.next_token_logits.double(), -1)[model.tokenizer.encode(" Berlin")[0]])


def test_the_parts_add_up_to_berlins_logit(default_model, capitals):
    a = direct_logit_attribution(default_model, capitals)
    assert default_model.tokenizer.decode([a.target]) == " Berlin"
    assert a.heads.shape == (30, 9) and a.biases == 0
    assert a.parts_sum == pytest.approx(float(capitals.next_token_logits[a.target]), abs=2e-3)
    contrast = direct_logit_attribution(default_model, capitals, target=" Berlin", contrast=" Paris")
    logits = capitals.next_token_logits
    assert contrast.total == pytest.approx(float(logits[a.target] - logits[contrast.contrast]), abs=1e-5)
    assert contrast.parts_sum == pytest.approx(contrast.total, abs=2e-3)


def test_the_heads_it_names_matter_more_than_idle_ones(default_model, capitals):
    a = direct_logit_attribution(default_model, capitals)
    top = [(c.layer, c.head) for c in top_components(a, 3, "up", kinds=("head",))]
    idle = [(c.layer, c.head) for c in top_components(a, 3, "idle", kinds=("head",))]
    full = _answer_probability(default_model, [])
    without_top, without_idle = _answer_probability(default_model, top), _answer_probability(default_model, idle)
    assert without_top < without_idle and without_top < full - 0.05
    assert abs(without_idle - full) < 0.02                                   # idle heads really are idle


def test_gemma_splits_the_chinese_answer(gemma_model):
    t = explainer.trace(gemma_model, ZH_PROMPT)
    a = direct_logit_attribution(gemma_model, t)
    assert gemma_model.tokenizer.decode([a.target]) == "柏"
    assert a.heads.shape == (18, 4) and a.embedding != 0
    assert a.parts_sum == pytest.approx(float(t.next_token_logits[a.target]), abs=2e-3)


def test_integrated_gradients_is_complete_on_smollm2(default_model):
    ai.forget(default_model)
    r = input_attribution(default_model, PROMPT)
    assert default_model.tokenizer.decode([r.target]) == " Berlin" and len(r.scores) == 12
    assert r.completeness_error <= 0.01 and r.stopped == "complete", (r.scores.sum(), r.gap)
    assert r.output > 0.9 and r.baseline_output < 1e-3                      # the baseline is far from the answer
    assert r.steps <= 96                                                     # fewer points than one fixed rule needed
    assert r.scores[r.tokens.index(" Germany")] > 0.2


def test_gradient_x_input_and_occlusion_score_every_token(default_model):
    occluded = input_attribution(default_model, PROMPT, method="occlusion")
    assert occluded.scores.shape == (12,) and occluded.tokens[10] == " Germany"
    assert occluded.scores[10] > 0.9                                         # without " Germany", no " Berlin"
    local = input_attribution(default_model, PROMPT, method="gradient_x_input")
    assert local.scores.shape == (12,) and local.scores[0] == 0 and np.abs(local.scores).max() > 1e-3


def test_two_sessions_at_once_get_their_own_answers(default_model):
    texts = (PROMPT, "猫和狗都是")
    alone = {}
    for text in texts:
        ai.forget(default_model)
        alone[text] = input_attribution(default_model, text, method="gradient_x_input").scores
    ai.forget(default_model)
    got = {}
    threads = [threading.Thread(target=lambda t=t: got.__setitem__(
        t, input_attribution(default_model, t, method="gradient_x_input").scores)) for t in texts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for text in texts:
        np.testing.assert_allclose(got[text], alone[text], atol=1e-4)


def test_the_default_model_is_left_as_it_was(default_model):
    hf = default_model.hf_model
    norms = [float(p.double().norm()) for p in hf.parameters()]
    grad_mode = torch.is_grad_enabled()
    ai.forget(default_model)
    input_attribution(default_model, "The cat sat on the", method="integrated_gradients", steps=8)
    assert [float(p.double().norm()) for p in hf.parameters()] == norms
    assert all(not p.requires_grad and p.grad is None for p in hf.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in hf.modules())
    assert torch.is_grad_enabled() == grad_mode
