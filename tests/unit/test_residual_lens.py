"""Residual norms, block writes and the logit lens, checked against HF's own hidden states."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import residual as res
from explainer.analysis.lens import first_layer_with_answer, logit_lens, logit_lens_at

from explainer.figures import layers as figs
from explainer.view import View

TEXT = "The cat sat on the mat because the cat was tired. The dog"
VIEW = View.of("layers")


@pytest.fixture(scope="module")
def traced(tiny_model):
    return tiny_model, explainer.trace(tiny_model, TEXT)


def _hf_lens(model, trace):
    """Independent logit lens: HF's hidden states (inputs of each block) → final norm → lm_head."""
    with torch.no_grad():
        out = model.hf_model(input_ids=trace.token_ids[None], output_hidden_states=True, use_cache=False)
    hidden = torch.stack(out.hidden_states[:-1])[:, 0]          # (n, T, d): entering each block
    norm = model.arch.final_norm(model.hf_model)
    with torch.no_grad():
        logits = model.hf_model.lm_head(norm(hidden))            # (n, T, V)
    return torch.cat([logits, out.logits])                       # (n+1, T, V): last row = real output


def test_logit_lens_matches_hf_hidden_states(traced):
    model, trace = traced
    ref = _hf_lens(model, trace).double()
    lens = logit_lens(model, trace, chunk=5)                     # several chunks
    probs = torch.softmax(ref, -1)
    assert torch.equal(lens.top_ids, ref.argmax(-1))
    assert torch.allclose(lens.top_probs.double(), probs.max(-1).values, atol=1e-5)
    answer = out_answer = ref[-1].argmax(-1)                     # (T,) the model's own prediction
    assert torch.equal(lens.target_ids, out_answer)
    t_probs = probs.gather(-1, answer.expand(ref.shape[0], -1)[..., None])[..., 0]
    assert torch.allclose(lens.target_probs.double(), t_probs, atol=1e-5)
    t_logit = ref.gather(-1, answer.expand(ref.shape[0], -1)[..., None])
    assert torch.equal(lens.target_ranks, (ref > t_logit).sum(-1))
    assert torch.all(lens.target_ranks[-1] == 0)                # the last row is the model's answer


def test_lens_at_some_positions_equals_the_full_lens(traced):
    model, trace = traced
    full = logit_lens(model, trace)
    part = logit_lens_at(model, trace, [3, 1, -1])
    cols = [3, 1, trace.n_tokens - 1]
    assert torch.equal(part.top_ids, full.top_ids[:, cols])
    assert torch.equal(part.target_ranks, full.target_ranks[:, cols])
    assert torch.allclose(part.target_probs, full.target_probs[:, cols])


def test_first_layers_follow_the_ranks(traced):
    model, trace = traced
    readout = res.lens_readout(model, trace)
    for p, first in enumerate(readout.first_layers):
        ranks = readout.answer_ranks[:, p]
        assert np.all(ranks[first:] == 0)
        assert first == 0 or ranks[first - 1] > 0


def test_norms_and_writes_are_plain_l2_norms(traced):
    _, trace = traced
    norms = res.residual_norms(trace)
    assert np.allclose(norms.norms, np.linalg.norm(trace.residual.numpy(), axis=-1), rtol=1e-5)
    writes = res.block_writes(trace)
    attn = np.linalg.norm(trace.attn_out.numpy(), axis=-1)
    assert np.allclose(writes.attn, attn, rtol=1e-5)
    assert np.allclose(writes.mlp, np.linalg.norm(trace.mlp_out.numpy(), axis=-1), rtol=1e-5)
    assert writes.attn_median.shape == (trace.n_layers,)
    # What the blocks write is what the stream gains (the residual bookkeeping behind the chart).
    gained = trace.residual[1:] - trace.residual[:-1]
    assert torch.allclose(gained, trace.attn_out + trace.mlp_out, atol=1e-4)


def test_largest_and_first_token_standout():
    norms = np.ones((3, 4), dtype=np.float32)
    norms[1, 0] = 50.0
    r = res.ResidualNorms(("a", "b", "c", "d"), norms)
    assert r.largest == (1, 0, 50.0) and r.typical == 1.0 and r.first_token_stands_out()
    norms[1, 0], norms[2, 3] = 1.0, 50.0
    assert not res.ResidualNorms(("a", "b", "c", "d"), norms).first_token_stands_out()


def test_readout_labels_are_the_tokenizers(traced):
    model, trace = traced
    readout = res.lens_readout(model, trace, 2, 6)
    lens = logit_lens_at(model, trace, range(2, 6))
    assert readout.start == 2 and readout.stop == 6 and readout.tokens == trace.tokens[2:6]
    first = model.tokenizer.decode([int(lens.top_ids[0, 0])])
    assert readout.top_labels[0][0] == first.replace("\n", "↵")
    with pytest.raises(IndexError):
        res.lens_readout(model, trace, 5, trace.n_tokens + 1)


def test_cached_readout_computes_each_position_once(traced, monkeypatch):
    model, trace = traced
    calls = []
    real = res.lens_readout
    monkeypatch.setattr(res, "lens_readout", lambda m, t, a, b: calls.append((a, b)) or real(m, t, a, b))
    first = res.cached_lens_readout(model, trace, 0, 6)
    again = res.cached_lens_readout(model, trace, 2, 8)          # only 6 and 7 are new
    assert calls == [(0, 6), (6, 8)]
    assert again.start == 2 and again.top_labels[0][:4] == first.top_labels[0][2:6]
    assert np.array_equal(again.answer_ranks[:, :4], first.answer_ranks[:, 2:])
    direct = real(model, trace, 2, 8)
    assert again.top_labels == direct.top_labels and again.first_layers == direct.first_layers
    assert np.allclose(again.answer_probs, direct.answer_probs)


def test_answer_growth_and_window(traced):
    model, trace = traced
    readout = res.lens_readout(model, trace)
    g = res.answer_growth(readout, trace.n_tokens - 1)
    assert g.probs.shape == (trace.n_layers + 1,) and g.ranks[-1] == 0
    assert g.answer == readout.answer_labels[-1] and g.rank_before_last == int(g.ranks[-2])
    with pytest.raises(IndexError):
        res.answer_growth(res.lens_readout(model, trace, 0, 2), 5)
    assert res.position_window(100, 99, 16) == (84, 100)
    assert res.position_window(100, 3, 16) == (0, 16)
    assert res.position_window(5, 4, 16) == (0, 5)


def _fake_readout(labels=("<0xE7>", " a"), n1=3):
    W = len(labels)
    return res.LensReadout(
        start=4, tokens=("<b>", "x"), top_labels=tuple(tuple(labels) for _ in range(n1)),
        top_probs=np.full((n1, W), 0.5, np.float32), answer_ids=(1, 2), answer_labels=("<s>", " y"),
        answer_probs=np.linspace(0, 1, n1 * W, dtype=np.float32).reshape(n1, W),
        answer_ranks=np.array([[5, 9], [1, 0], [0, 0]]), first_layers=(2, 1))


def test_lens_grid_figure_structure_and_escaping():
    fig = figs.lens_grid_figure(_fake_readout(), VIEW, position=5)
    heat = fig.data[0]
    assert np.asarray(heat.z).shape == (3, 2)
    assert list(heat.x) == ["4: &lt;b&gt;", "5: x"]                   # "position: token", the one rule
    assert heat.text[0][0] == "&lt;0xE7&gt;" and heat.text[0][1] == "␣a"
    assert "%{customdata[0]}" in heat.hovertemplate and "%{z:.2%}" in heat.hovertemplate
    assert heat.customdata[0][0][1] == "&lt;s&gt;"
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].x0 == 0.5  # column of position 5


def test_cell_label():
    assert figs.cell_label(" ") == "␣" and figs.cell_label("<b>") == "&lt;b&gt;"
    assert figs.cell_label("extraordinarily") == "extraor…"


def test_growth_norms_and_writes_figures(traced):
    model, trace = traced
    g = res.answer_growth(res.lens_readout(model, trace), -1 % trace.n_tokens)
    fig = figs.growth_figure(g, VIEW)
    assert len(fig.data) == 3 and list(fig.data[2].y) == list(g.ranks + 1)
    assert fig.layout.yaxis2.type == "log" and fig.layout.yaxis2.autorange == "reversed"
    assert all("%{x}" in d.hovertemplate and "%{customdata}" in d.hovertemplate for d in fig.data)
    norms = res.residual_norms(trace)
    heat = figs.norms_figure(norms, VIEW, position=2).data[0]
    assert np.allclose(np.asarray(heat.customdata), norms.norms)
    assert np.allclose(np.asarray(heat.z), np.log10(norms.norms), atol=1e-5)
    assert len(heat.x) == trace.n_tokens and "%{customdata:,.2f}" in heat.hovertemplate
    writes = figs.writes_figure(res.block_writes(trace, 2), VIEW)
    assert len(writes.data) == 4 and writes.layout.yaxis.type == "log"
    assert np.allclose(writes.data[1].y, res.block_writes(trace).mlp[:, 2])
