"""Learned position tables and rotary positions, checked against independent computations."""
import math

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import position as pos
from explainer.analysis.qk import query_keys
from explainer.figures import position as figs
from explainer.trace import RotaryInfo
from explainer.view import View

VIEW = View.of("position")
PROMPT = "dog bites man. man bites dog."


def test_learned_table_and_similarity(tiny_gpt2):
    lp = pos.learned_positions(tiny_gpt2, max_shown=32)
    wpe = tiny_gpt2.hf_model.transformer.wpe.weight.detach().numpy()       # (128, 32)
    assert lp.n_positions == 128 and lp.positions == tuple(range(0, 128, 4)) and lp.stride == 4
    assert lp.dims == tuple(range(32)) and lp.dim_stride == 1
    np.testing.assert_allclose(lp.vectors, wpe[::4], atol=1e-7)
    a, b = wpe[8], wpe[20]
    assert lp.similarity[2, 5] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-5)
    np.testing.assert_allclose(np.diag(lp.similarity), 1, atol=1e-5)


def test_added_positions_are_what_the_first_block_reads(tiny_gpt2):
    tr = explainer.trace(tiny_gpt2, PROMPT)
    torch.testing.assert_close(tr.embeddings + tr.positions, tr.residual[0], atol=1e-6, rtol=0)
    added = pos.added_positions(tr)
    np.testing.assert_allclose(added.sum_norm, tr.residual[0].norm(dim=-1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(added.position_norm, np.linalg.norm(
        tiny_gpt2.hf_model.transformer.wpe.weight.detach().numpy()[: tr.n_tokens], axis=-1), rtol=1e-5)


def test_rotary_models_refuse_learned_views(tiny_llama):
    tr = explainer.trace(tiny_llama, PROMPT)
    with pytest.raises(ValueError):
        pos.learned_positions(tiny_llama)
    with pytest.raises(ValueError):
        pos.added_positions(tr)


def test_frequencies():
    info = RotaryInfo(10000.0, 8, 1.0 / 10000.0 ** (torch.arange(0, 8, 2).float() / 8))
    f = pos.rotary_frequencies(info)
    np.testing.assert_allclose(f.wavelength, 2 * np.pi / np.array([1, 0.1, 0.01, 0.001]), rtol=1e-5)


def test_distance_curve_is_a_relative_rotation(tiny_llama):
    """The curve equals q·k with HF's own RoPE at positions (p, p + d), for any p."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    tr = explainer.trace(tiny_llama, PROMPT)
    curve = pos.rotary_distance_curve(tr.rotary, max_distance=20, seed=3)
    q = torch.randn(tr.rotary.head_dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    rope = tiny_llama.hf_model.model.rotary_emb
    for start in (0, 7):
        ids = torch.tensor([[start] + [start + d for d in range(21)]])
        cos, sin = rope(torch.zeros(1, 1, dtype=torch.float64), ids)
        x = q.float().expand(1, 1, 22, -1)
        rq, _ = apply_rotary_pos_emb(x, x, cos.float(), sin.float())
        got = (rq[0, 0, 1:] @ rq[0, 0, 0]) / (q.float() @ q.float())
        np.testing.assert_allclose(got.numpy(), curve.one_pair, atol=1e-4)
    assert curve.one_pair[0] == pytest.approx(1) and curve.average[0] == pytest.approx(1)
    want_avg = [np.mean(np.cos(d * tr.rotary.inv_freq.double().numpy())) for d in range(21)]
    np.testing.assert_allclose(curve.average, want_avg, atol=1e-9)


def test_real_scores_reproduce_the_attention_row(tiny_llama):
    tr = explainer.trace(tiny_llama, PROMPT)
    qk = query_keys(tiny_llama, tr, 1)
    real = pos.real_distance_scores(qk, 3, 6)
    np.testing.assert_array_equal(real.distance, [6, 5, 4, 3, 2, 1, 0])
    weights = torch.softmax(torch.tensor(real.rotated, dtype=torch.float64), -1)
    np.testing.assert_allclose(weights.numpy(), tr.attention(1)[3, 6, :7].numpy(), atol=1e-5)
    raw = (qk.k_unrotated[1, :7] @ qk.q_unrotated[3, 6] * qk.scale).numpy()
    np.testing.assert_allclose(real.unrotated, raw, atol=1e-6)
    assert not np.allclose(real.rotated, real.unrotated)            # the rotation changes the scores


def test_figures(tiny_gpt2, tiny_llama):
    lp = pos.learned_positions(tiny_gpt2)
    v = figs.position_vectors_figure(lp, VIEW)
    s = figs.position_similarity_figure(lp.similarities, VIEW)
    assert v.data[0].zmid == 0 and s.data[0].zmin == -1 and "%{z:.3f}" in s.data[0].hovertemplate
    tr = explainer.trace(tiny_gpt2, "<0xE7> a b")
    bars = figs.added_norms_figure(pos.added_positions(tr), VIEW)
    assert len(bars.data) == 3 and "&lt;" in bars.data[0].x[0] and "<" not in bars.data[0].x[0]
    assert all("{series}" not in b.hovertemplate for b in bars.data)
    lt = explainer.trace(tiny_llama, PROMPT)
    bases = pos.rotary_bases(lt, tiny_llama.context_length)
    f = figs.rotary_frequency_figure(bases, VIEW)
    assert f.layout.yaxis.type == "log" and len(f.data) == 1 and len(f.data[0].x) == lt.rotary.head_dim // 2
    c = figs.distance_curve_figure(pos.distance_curves(bases, 30), VIEW)
    assert len(c.data) == 2 and len(c.data[0].x) == 257 and c.layout.xaxis.type != "log"   # 0..max(256, T)
    real = pos.real_distance_scores(query_keys(tiny_llama, lt, 0), 0, 4, lt.tokens)
    r = figs.real_distance_figure(real, VIEW)
    assert len(r.data) == 2 and list(r.data[1].customdata) == [f"{j}: {lt.tokens[j].replace(' ', '␣', 1)}" for j in range(5)]
    assert "%{customdata}" in r.data[0].hovertemplate
