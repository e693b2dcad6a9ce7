"""Input attribution (integrated gradients, gradient × input, occlusion) on tiny random models."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import attribution_inputs as ai
from explainer.analysis import attribution_paths as paths
from explainer.analysis.attribution import TargetError
from explainer.analysis.attribution_inputs import InputAttribution, input_attribution
from explainer.jobs import Cancelled

TEXT = "The capital of France is Paris. The capital of Germany is"
OTHER = "When Mary and John went to the store, John gave a drink to"


def _vectors(model, text):
    ids = torch.tensor([model.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        return ids, model.arch.token_embedding(model.hf_model)(ids)        # (1, T), (1, T, d)


def _probability(model, vectors, target):
    with torch.no_grad():
        return float(torch.softmax(model.hf_model(inputs_embeds=vectors).logits[0, -1].double(), -1)[target])


def test_integrated_gradients_is_complete(tiny_model):
    ai.forget(tiny_model)
    r = input_attribution(tiny_model, TEXT, budget_s=600)                  # a busy machine must not stop it early
    ids, x = _vectors(tiny_model, TEXT)
    assert r.method == "integrated_gradients" and r.steps >= paths.FIRST_SEGMENTS * paths.POINTS_PER_SEGMENT
    assert r.scores.shape == (ids.shape[1],) and r.token_ids == tuple(ids[0].tolist())
    assert r.target == int(explainer.trace(tiny_model, TEXT).next_token_logits.argmax())
    assert r.output == pytest.approx(_probability(tiny_model, x, r.target), rel=1e-4)   # random: p ≈ 3e-5
    base = torch.zeros_like(x)
    base[:, 0] = x[:, 0]                                                    # the first token stays
    assert r.baseline_output == pytest.approx(_probability(tiny_model, base, r.target), rel=1e-4)
    assert r.scores[0] == 0 and np.abs(r.scores[1:]).max() > 0
    assert abs(r.scores.sum() - r.gap) <= 0.01 * abs(r.gap) and r.stopped == "complete" and not r.missed


def test_segments_cover_the_path_and_each_knows_its_own_error(tiny_llama):
    r = input_attribution(tiny_llama, TEXT, budget_s=600)
    segments = r.path.segments
    assert segments[0].start == 0 and segments[-1].stop == 1
    assert all(a.stop == b.start for a, b in zip(segments, segments[1:]))           # contiguous, no overlap
    assert r.steps == r.path.points and r.path.error_bound <= paths.TOLERANCE * abs(r.gap)
    np.testing.assert_allclose(r.scores[1:], r.path.scores.numpy()[1:], rtol=1e-12)
    _, x = _vectors(tiny_llama, TEXT)
    base = torch.zeros_like(x)
    base[:, 0] = x[:, 0]
    middle = segments[len(segments) // 2]
    for alpha, p in ((middle.start, middle.p_start), (middle.stop, middle.p_stop)):   # the ends are real forwards
        assert p == pytest.approx(_probability(tiny_llama, base + alpha * (x - base), r.target), rel=1e-4, abs=1e-9)
    assert middle.error == pytest.approx(middle.p_stop - middle.p_start - float(middle.scores.sum()))


def test_a_fixed_rule_is_used_as_given(tiny_llama):
    asked = input_attribution(tiny_llama, TEXT, steps=2)
    assert asked.steps == 2 and asked.completeness_error > 0.05 and asked.path is None   # 2 points are too few
    assert asked.missed


def test_the_time_budget_stops_refining_and_refine_continues(tiny_llama, monkeypatch):
    monkeypatch.setattr(paths, "TOLERANCE", 0.0)                           # never complete: only time stops it
    first = input_attribution(tiny_llama, TEXT, budget_s=0.0)
    assert first.stopped == "budget" and first.steps == paths.FIRST_SEGMENTS * paths.POINTS_PER_SEGMENT
    more = input_attribution(tiny_llama, TEXT, budget_s=1.0, refine=first)
    assert more.steps > first.steps and more.stopped in ("budget", "points")
    assert more.path.error_bound <= first.path.error_bound and more.seconds > first.seconds
    assert len(more.path.segments) > len(first.path.segments)
    with pytest.raises(ValueError, match="same text"):
        input_attribution(tiny_llama, OTHER, refine=first)
    with pytest.raises(ValueError, match="steps=None"):
        input_attribution(tiny_llama, TEXT, steps=8, refine=first)


def test_progress_that_raises_stops_the_work_and_frees_its_slot(tiny_llama):
    calls: list[float] = []

    def stop(fraction, message):
        calls.append(fraction)
        if len(calls) == 2:
            raise Cancelled("nobody waits")
    ai.forget(tiny_llama)
    with pytest.raises(Cancelled):
        input_attribution(tiny_llama, TEXT, progress=stop)
    assert len(calls) == 2
    for _ in range(ai.AT_ONCE):                                             # every slot is free again
        assert ai._slots.acquire(blocking=False)
    for _ in range(ai.AT_ONCE):
        ai._slots.release()


def test_gradient_x_input_is_the_gradient_times_the_vectors(tiny_llama):
    r = input_attribution(tiny_llama, TEXT, method="gradient_x_input")
    _, x = _vectors(tiny_llama, TEXT)
    x = x.clone().requires_grad_()
    with torch.enable_grad():
        out = torch.softmax(tiny_llama.hf_model(inputs_embeds=x).logits[0, -1], -1)[r.target]
        grad, = torch.autograd.grad(out, x)
    expected = (grad * x.detach())[0].sum(-1).double().numpy()
    expected[0] = 0                                                        # the first token is the baseline's
    np.testing.assert_allclose(r.scores, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert r.steps is None and len(r.scores) == len(r.tokens)


def test_occlusion_removes_one_token_at_a_time(tiny_gemma3):
    r = input_attribution(tiny_gemma3, TEXT, method="occlusion")
    _, x = _vectors(tiny_gemma3, TEXT)
    scale = np.abs(r.scores).max()
    assert scale > 0
    for position in (1, 4, x.shape[1] - 1):
        without = x.clone()
        without[:, position] = 0
        removed = r.output - _probability(tiny_gemma3, without, r.target)
        assert r.scores[position] == pytest.approx(removed, abs=1e-3 * scale)
    assert r.scores[0] == 0 and len(r.scores) == x.shape[1]


def test_gpt2_positions_stay_put(tiny_gpt2):
    """GPT-2 adds learned positions inside the model: only token vectors move along the path."""
    r = input_attribution(tiny_gpt2, TEXT, method="integrated_gradients", steps=64)
    t = explainer.trace(tiny_gpt2, TEXT)
    assert r.output == pytest.approx(float(torch.softmax(t.next_token_logits.double(), -1)[r.target]), rel=1e-4)
    assert r.completeness_error <= 0.05


def test_a_typed_target_and_rows(tiny_llama):
    r = input_attribution(tiny_llama, TEXT, target=" Berlin", method="gradient_x_input")
    assert r.target == tiny_llama.tokenizer(" Berlin", add_special_tokens=False)["input_ids"][0]
    rows = r.rows()
    assert [row["position"] for row in rows] == list(range(len(r.tokens)))
    assert rows[3] == {"position": 3, "token": r.tokens[3], "token_id": r.token_ids[3], "score": r.scores[3]}
    json.dumps(rows)
    with pytest.raises(ValueError):
        r.scores[1] = 0.0                                                   # shared: read-only


def test_progress_reaches_the_end(tiny_qwen3):
    ai.forget(tiny_qwen3)
    seen: list[tuple[float, str]] = []
    input_attribution(tiny_qwen3, TEXT, steps=40, progress=lambda f, msg: seen.append((f, msg)))
    fractions = [f for f, _ in seen]
    assert len(seen) >= 2 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1][1] == "40/40"
    seen.clear()
    input_attribution(tiny_qwen3, TEXT, method="occlusion", progress=lambda f, msg: seen.append((f, msg)))
    assert seen[-1][0] == 1.0
    seen.clear()
    input_attribution(tiny_qwen3, TEXT, progress=lambda f, msg: seen.append((f, msg)))    # segments
    assert seen[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in seen)


def test_results_are_remembered_per_model(tiny_qwen3):
    ai.forget(tiny_qwen3)
    first = input_attribution(tiny_qwen3, TEXT, method="gradient_x_input")
    assert input_attribution(tiny_qwen3, TEXT, method="gradient_x_input") is first
    assert input_attribution(tiny_qwen3, TEXT, method="occlusion") is not first
    ai.forget(tiny_qwen3)
    again = input_attribution(tiny_qwen3, TEXT, method="gradient_x_input")
    assert again is not first and np.array_equal(again.scores, first.scores)
    assert input_attribution(tiny_qwen3, TEXT, refine=input_attribution(tiny_qwen3, TEXT)) is not first


def test_bad_requests_say_what_is_wrong(tiny_llama):
    with pytest.raises(ValueError, match="Unknown attribution method 'lime'"):
        input_attribution(tiny_llama, TEXT, method="lime")
    with pytest.raises(ValueError, match="steps must be a whole number from 2"):
        input_attribution(tiny_llama, TEXT, steps=1)
    with pytest.raises(ValueError, match="steps must be"):
        input_attribution(tiny_llama, TEXT, steps=32.5)
    with pytest.raises(ValueError, match="empty"):
        input_attribution(tiny_llama, "   ")
    with pytest.raises(TypeError, match="must be text"):
        input_attribution(tiny_llama, 42)
    with pytest.raises(ValueError, match="at most 8 tokens"):
        input_attribution(tiny_llama, TEXT, max_tokens=8)
    with pytest.raises(TargetError, match="empty"):
        input_attribution(tiny_llama, TEXT, target="")
    with pytest.raises(TargetError, match="no token with id"):
        input_attribution(tiny_llama, TEXT, target=10**9)


def _alone(model, text, method):
    ai.forget(model)
    return input_attribution(model, text, method=method, steps=None if method != "integrated_gradients" else 24)


def test_threads_do_not_mix(tiny_llama):
    """Two texts attributed at once, while a third thread traces with heads switched off (its hooks
    live on the shared model meanwhile), give what each gives alone."""
    alone = {t: _alone(tiny_llama, t, "integrated_gradients").scores for t in (TEXT, OTHER)}
    ai.forget(tiny_llama)
    got: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def attribute(text):
        try:
            got[text] = input_attribution(tiny_llama, text, steps=24).scores
        except BaseException as err:                                       # noqa: BLE001 - reported below
            errors.append(err)

    def keep_tracing():
        while not stop.is_set():
            explainer.trace(tiny_llama, OTHER, ablate_heads=[(0, 0), (1, 1)], ablate_mlps=[0])

    tracer = threading.Thread(target=keep_tracing)
    workers = [threading.Thread(target=attribute, args=(t,)) for t in (TEXT, OTHER)]
    tracer.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    tracer.join()
    assert not errors
    for text in (TEXT, OTHER):
        np.testing.assert_allclose(got[text], alone[text], atol=1e-5)


def test_a_full_house_waits_its_turn(tiny_llama, monkeypatch):
    monkeypatch.setattr(ai, "_slots", threading.BoundedSemaphore(1))
    ai.forget(tiny_llama)
    ai._slots.acquire()                                                    # someone else is attributing
    messages: list[str] = []
    waiting = threading.Event()
    result: list[InputAttribution] = []

    def note(fraction, message):
        messages.append(message)
        waiting.set()

    worker = threading.Thread(target=lambda: result.append(
        input_attribution(tiny_llama, TEXT, method="gradient_x_input", progress=note)))
    worker.start()
    assert waiting.wait(30) and messages == ["waiting for other attributions to finish"] and not result
    ai._slots.release()
    worker.join(30)
    assert len(result) == 1 and messages[-1] == "1/1"


def test_the_shared_model_is_left_as_it_was(tiny_gemma3):
    hf = tiny_gemma3.hf_model
    before = {name: p.detach().clone() for name, p in hf.named_parameters()}
    grad_mode = torch.is_grad_enabled()
    ai.forget(tiny_gemma3)
    for method in ai.METHODS:
        input_attribution(tiny_gemma3, TEXT, method=method, steps=None if method != "integrated_gradients" else 8)
    with torch.inference_mode():                                           # a caller inside inference mode
        input_attribution(tiny_gemma3, OTHER, method="gradient_x_input")
    assert torch.is_grad_enabled() == grad_mode and not torch.is_inference_mode_enabled()
    for name, p in hf.named_parameters():
        assert torch.equal(p, before[name]) and not p.requires_grad and p.grad is None, name
    for module in hf.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks
    assert not hf.training


def test_result_fields():
    r = InputAttribution(np.array([0.0, 1.0, 2.5]), ("a", "b", "c"), (1, 2, 3), 5.0, 1.0, "occlusion", 7, None)
    assert r.gap == 4.0 and r.completeness_error == pytest.approx(0.125) and r.kept == (0,)
