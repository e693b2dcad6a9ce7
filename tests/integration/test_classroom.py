"""A full classroom: 30 students trace different prompts at once through one shared model."""
from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import explainer

pytestmark = pytest.mark.integration
N_STUDENTS = 30
SUBJECTS = ["France", "Germany", "Japan", "Brazil", "Kenya", "Canada", "Egypt", "India", "Peru", "Norway"]


def prompts() -> list[str]:
    out = []
    for i in range(N_STUDENTS):
        subject = SUBJECTS[i % len(SUBJECTS)]
        out.append([f"The capital of {subject} is",
                    f"Student {i} writes: my favourite country is {subject} because",
                    f"法国的首都是巴黎。{subject} 的首都是"][i % 3])
    return out


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to the largest value (the scale the numbers live on)."""
    return float((a - b).abs().max() / a.abs().max())


def _same(a: explainer.Trace, b: explainer.Trace) -> None:
    """Concurrent prompts run as one padded batch: equal to the prompt alone within 1e-4 relative
    (a batched matrix product rounds differently from a single one, so bits may differ)."""
    assert a.tokens == b.tokens and torch.equal(a.token_ids, b.token_ids)
    assert _relative(a.next_token_logits, b.next_token_logits) <= 1e-4
    for layer in range(a.n_layers + 1):
        assert _relative(a.stream(layer), b.stream(layer)) <= 1e-4, layer
    for layer in (0, a.n_layers // 2, a.n_layers - 1):
        torch.testing.assert_close(a.attention(layer), b.attention(layer), atol=1e-5, rtol=0)
    assert int(a.next_token_logits.argmax()) == int(b.next_token_logits.argmax())


def test_thirty_concurrent_students_get_their_own_exact_results(default_model):
    texts = prompts()
    alone = [explainer.trace(default_model, t) for t in texts]          # one at a time

    barrier = threading.Barrier(N_STUDENTS)
    latencies: list[float] = [0.0] * N_STUDENTS

    def student(i: int) -> explainer.Trace:
        barrier.wait()                                                  # all start together
        t0 = time.perf_counter()
        result = explainer.trace(default_model, texts[i])
        latencies[i] = time.perf_counter() - t0
        return result

    with ThreadPoolExecutor(N_STUDENTS) as pool:
        together = list(pool.map(student, range(N_STUDENTS)))           # errors re-raise here

    for i, (a, b) in enumerate(zip(alone, together)):
        assert b.text == texts[i]
        _same(a, b)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"\n{N_STUDENTS} concurrent traces (default model, {torch.get_num_threads()} torch threads): "
          f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms, "
          f"sum {sum(latencies):.1f} s")


def test_concurrent_students_do_not_change_the_shared_model(default_model):
    before = {k: v.clone() for k, v in list(default_model.hf_model.state_dict().items())[:6]}
    hooks_before = sum(len(m._forward_hooks) + len(m._forward_pre_hooks)
                       for m in default_model.hf_model.modules())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda t: explainer.trace(default_model, t), prompts()[:16]))
    hooks_after = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in default_model.hf_model.modules())
    assert hooks_after == hooks_before
    for k, v in before.items():
        assert torch.equal(default_model.hf_model.state_dict()[k], v)
