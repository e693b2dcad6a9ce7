"""q and k recomputed from the trace reproduce the model's own attention, step by step."""
import math

import pytest
import torch

import explainer
from explainer.analysis.qk import difference_from_trace, qk_steps, query_keys, rotate
from explainer.figures.attention import qk_steps_figure
from explainer.analysis.attention import window_for

PROMPT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(scope="module")
def traced(tiny_model):
    return tiny_model, explainer.trace(tiny_model, PROMPT)


def test_recomputed_softmax_equals_trace_attention(traced):
    model, tr = traced
    for layer in range(model.n_layers):
        qk = query_keys(model, tr, layer)
        own = tr.attention(layer)                                   # (H, T, T)
        for head in range(model.n_heads):
            for query in range(tr.n_tokens):
                steps = qk_steps(model, tr, layer, head, query, qk)
                torch.testing.assert_close(steps.weights, own[head, query], atol=1e-5, rtol=0)


def test_steps_are_consistent(traced):
    model, tr = traced
    s = qk_steps(model, tr, 1, 2, 4)
    assert s.scale == pytest.approx(1 / math.sqrt(model.head_dim))
    torch.testing.assert_close(s.scaled, s.scores * s.scale)
    assert torch.isinf(s.masked[5:]).all() and (s.masked[5:] < 0).all()
    assert torch.isfinite(s.masked[:5]).all()
    assert float(s.weights.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(s.weights[5:].abs().sum()) == 0.0
    assert difference_from_trace(s, tr) < 1e-5
    rows = s.rows(0, 6)
    assert [r[0] for r in rows] == list(range(6)) and rows[5][3] == -math.inf


def test_grouped_query_heads(tiny_llama):
    tr = explainer.trace(tiny_llama, PROMPT)
    qk = query_keys(tiny_llama, tr, 0)
    assert qk.q.shape == (4, tr.n_tokens, tiny_llama.head_dim)
    assert qk.k.shape == (2, tr.n_tokens, tiny_llama.head_dim)
    assert [qk.kv_head(h) for h in range(4)] == [0, 0, 1, 1]
    assert qk_steps(tiny_llama, tr, 0, 3, 2, qk).sharing == (2,)


def test_rotate_matches_transformers():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    torch.manual_seed(1)
    q, k = torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
    angles = torch.arange(5.0)[:, None] * torch.rand(4)[None]      # (T, hd/2)
    cos, sin = torch.cat((angles.cos(),) * 2, -1), torch.cat((angles.sin(),) * 2, -1)
    q_ref, k_ref = apply_rotary_pos_emb(q, k, cos[None], sin[None])
    torch.testing.assert_close(rotate(q, cos, sin), q_ref)
    torch.testing.assert_close(rotate(k, cos, sin), k_ref)


def test_bad_inputs_are_refused(traced):
    model, tr = traced
    with pytest.raises(ValueError):
        query_keys(model, tr, model.n_layers)
    with pytest.raises(ValueError):
        qk_steps(model, tr, 0, model.n_heads, 0)
    with pytest.raises(ValueError):
        qk_steps(model, tr, 0, 0, tr.n_tokens)


def test_steps_figure_structure(traced):
    from explainer.analysis.attention import key_steps
    from explainer.view import View
    model, tr = traced
    s = qk_steps(model, tr, 0, 1, 3)
    fig = qk_steps_figure(key_steps(s, tr, window_for(tr.n_tokens)), View.of("attention"))
    bars = [d for d in fig.data if d.type == "bar"]
    assert len(bars) == 4 and all(len(b.x) == tr.n_tokens for b in bars)
    assert all("%{customdata}" in b.hovertemplate for b in bars)
    masked_bar = bars[2]
    assert masked_bar.y[4] is None and masked_bar.customdata[4].startswith("−∞")   # key 4 is after query 3
    assert any(d.type == "scatter" and "−∞" in d.text for d in fig.data)
