"""Fewer launches on a GPU, checked on the CPU: every number equals the same trace made as usual.

- Batched captures (on a GPU, passes of up to 4,096 tokens): the hooks keep each block's tensors and
  the recorder reduces them all at once after the pass; prompts of different lengths in one batch.
- The traced pass replayed as a graph (``LLM_EXPLAINER_CUDA_GRAPHS=1``, off by default), with the eager
  stand-in for capture and replay: right padding to a bucket, MLP peaks over real tokens only, each
  prompt's own last logits, what a trace keeps copied out of the buffers the next replay reuses.
"""
from __future__ import annotations

import pytest
import torch

import explainer
from explainer import capture, graphs, tracing

TEXT = "The cat sat on the mat because the cat was tired, and then the dog sat on the cat."
NOTHING_OFF = (frozenset(), frozenset())


@pytest.fixture(params=["per block", "batched"])
def replay(request, monkeypatch):
    """Call it to switch graphs on (the CPU standing in for a GPU); traces made before are the usual ones.
    The captured pass reduces its captures per block, or all at once (as a GPU does for short passes)."""
    monkeypatch.setattr(graphs, "DEVICE_TYPES", ("cuda", "cpu"))
    if request.param == "batched":
        monkeypatch.setattr(capture, "BATCHED_ON", ("cuda", "cpu"))
    graphs._graphs.clear()
    return lambda on=True: monkeypatch.setenv(graphs.OPTION, "1" if on else "0")


def _equal(a, b) -> None:
    for x, y in ((a.next_token_logits, b.next_token_logits), (a.residual, b.residual),
                 (a.write_norms()[0], b.write_norms()[0]), (a.write_norms()[1], b.write_norms()[1]),
                 (a.mlp_peaks()[0], b.mlp_peaks()[0])):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
    assert torch.equal(a.mlp_peaks()[1], b.mlp_peaks()[1]) and a.tokens == b.tokens


def test_batched_captures_equal_the_usual_ones(tiny_model, monkeypatch):
    texts = [TEXT, TEXT[:20], "A dog."]
    usual = [explainer.trace(tiny_model, t) for t in texts]
    monkeypatch.setattr(capture, "BATCHED_ON", ("cuda", "cpu"))
    alone = explainer.trace(tiny_model, TEXT)
    assert tracing.estimate_bytes(tiny_model, alone.n_tokens) > 0
    _equal(alone, usual[0])
    for a, b in zip(tracing.trace_many(tiny_model, texts), usual):     # padded rows: peaks over real tokens
        _equal(a, b)
    off = explainer.trace(tiny_model, TEXT, ablate_heads=[(0, 1)], ablate_mlps=[1])
    monkeypatch.setattr(capture, "BATCHED_ON", ("cuda",))
    _equal(off, explainer.trace(tiny_model, TEXT, ablate_heads=[(0, 1)], ablate_mlps=[1]))


def test_off_by_default(tiny_llama, monkeypatch):
    monkeypatch.delenv(graphs.OPTION, raising=False)
    assert not graphs.wanted(tiny_llama, [10], NOTHING_OFF)


def test_a_replayed_pass_equals_the_usual_one(tiny_model, replay):
    usual = [explainer.trace(tiny_model, text) for text in (TEXT, TEXT[:30])]
    replay()
    first = explainer.trace(tiny_model, TEXT)
    second = explainer.trace(tiny_model, TEXT[:30])          # the same bucket: the same buffers replayed
    assert list(graphs._graphs[tiny_model]) == [(1, 64)]     # one shape captured, padded to 64 tokens
    _equal(first, usual[0])                                  # …and the first trace kept its own numbers
    _equal(second, usual[1])
    assert first.block_check(tiny_model.n_layers - 1) < 1e-4


def test_batches_and_what_is_not_graphed(tiny_llama, replay):
    texts = [TEXT, TEXT[:20], "A dog."]
    alone = [explainer.trace(tiny_llama, t) for t in texts]
    replay()
    for a, b in zip(tracing.trace_many(tiny_llama, texts), alone):   # bucket (4, 64): a padded batch row
        _equal(a, b)
    assert list(graphs._graphs[tiny_llama]) == [(4, 64)]
    assert not graphs.wanted(tiny_llama, [10], (frozenset({(0, 1)}), frozenset()))   # heads off: as usual
    assert not graphs.wanted(tiny_llama, [graphs.LENGTHS[-1] + 1], NOTHING_OFF)       # long: as usual
    assert not graphs.wanted(tiny_llama, [10] * (graphs.BATCHES[-1] + 1), NOTHING_OFF)
    assert not graphs.wanted(tiny_llama, [1000] * 8, NOTHING_OFF)                      # 8 × 1,024 padded


def test_a_shape_that_cannot_be_captured_runs_as_usual(tiny_llama, replay, monkeypatch):
    class Broken(graphs.Eager):
        def capture(self, fn):
            raise RuntimeError("operation not permitted when stream is capturing")
    monkeypatch.setitem(graphs.CAPTURE, "cpu", Broken)
    usual = explainer.trace(tiny_llama, "Once more, with feeling.")
    replay()
    with pytest.warns(RuntimeWarning, match="capture"):
        got = explainer.trace(tiny_llama, "Once more, with feeling.")
    _equal(got, usual)
    assert graphs._graphs[tiny_llama][(1, 64)] is None        # not tried again for that shape
