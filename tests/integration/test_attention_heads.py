"""On the real SmolLM2-135M: recomputed q·k match its attention, and known head types exist."""
import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import attention as att
from explainer.analysis.position import real_distance_scores
from explainer.analysis.qk import qk_steps, query_keys

pytestmark = pytest.mark.integration

PROMPT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(scope="module")
def traced(default_model):
    return explainer.trace(default_model, PROMPT)


@pytest.mark.parametrize("layer", [0, 9, 17, 29])
def test_recomputed_softmax_matches_the_real_model(default_model, traced, layer):
    qk = query_keys(default_model, traced, layer)
    own = traced.attention(layer)
    for head in range(default_model.n_heads):
        for query in (1, 8, traced.n_tokens - 1):
            steps = qk_steps(default_model, traced, layer, head, query, qk)
            torch.testing.assert_close(steps.weights, own[head, query], atol=1e-5, rtol=0)
    real = real_distance_scores(qk, 4, traced.n_tokens - 1)
    np.testing.assert_allclose(torch.softmax(torch.tensor(real.rotated), -1).numpy(), own[4, -1].numpy(), atol=1e-5)


def test_gqa_layout(default_model):
    assert (default_model.n_heads, default_model.n_kv_heads) == (9, 3)


def test_previous_token_and_induction_heads(default_model):
    words = "apple river stone candle violet hammer orbit pepper lantern cactus".split()
    text = " ".join(words + words + words)                          # a random sequence seen three times
    stats = att.head_stats(explainer.trace(default_model, text))
    layer, head = att.most_previous_token_head(stats)
    assert stats.previous[layer, head] > 0.6
    layer, head = att.most_induction_head(stats)
    assert stats.induction[layer, head] > 0.4 and layer > 0        # induction needs an earlier layer's help
    first = att.most_first_token_head(stats)
    assert stats.first[first] > 0.5


def test_default_prompt_heads(traced):
    stats = att.head_stats(traced)
    assert att.most_previous_token_head(stats) == (16, 0)
    assert att.most_induction_head(stats) == (17, 5)
