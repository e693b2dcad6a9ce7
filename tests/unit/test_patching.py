"""Activation patching on tiny random GPT-2, Llama, Qwen3 and Gemma 3 models: the library against an
independent hook-based implementation, its identities, its refusals, its memory bound and its sharing."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from explainer.analysis import patching as lib
from explainer.analysis.patching import PatchingError, activation_patching
from explainer.analysis.patching_runs import SITES, Patch, patched, rows_per_batch, sources, sweep, unembedding_rows
from explainer.budget import TooLarge
from explainer.tracing import tokenize
from tests import patching_reference as ref

# Two words changed, the first at position 1: every later position differs, and the tiny Gemma's
# 8-token window is crossed (15 tokens).
CLEAN = "The cat sat on the mat because the cat was tired, and then the"
CORRUPTED = "The dog sat on the mat because the dog was tired, and then the"


@pytest.fixture(scope="module")
def results(tiny_model):
    return activation_patching(tiny_model, CLEAN, CORRUPTED, "all")


def _ids(model):
    return tokenize(model, CLEAN)[0], tokenize(model, CORRUPTED)[0]


def test_equals_an_independent_hook_implementation(tiny_model, results):
    a, b = _ids(tiny_model)
    first = results["resid_pre"]
    hf = tiny_model.hf_model
    assert first.clean_diff == pytest.approx(ref.run_diff(hf, a, first.answer, first.contrast), abs=1e-4)
    assert first.corrupted_diff == pytest.approx(ref.run_diff(hf, b, first.answer, first.contrast), abs=1e-4)
    for site in SITES:
        r = results[site]
        expected = ref.logit_diffs(hf, a, b, site, r.answer, r.contrast)
        np.testing.assert_allclose(r.diffs, expected, atol=2e-4, rtol=1e-4)
        gap = r.clean_diff - r.corrupted_diff
        np.testing.assert_allclose(r.scores, (expected - r.corrupted_diff) / gap, atol=2e-4 / abs(gap) + 1e-6)


def test_shapes_defaults_and_rows(tiny_model, results):
    n, H = tiny_model.n_layers, tiny_model.n_heads
    src = sources(tiny_model, *_ids(tiny_model))
    r = results["attn_out"]
    T = len(r.tokens)
    assert {s: results[s].scores.shape for s in SITES} == {"resid_pre": (n, T), "attn_out": (n, T),
                                                           "mlp_out": (n, T), "heads": (n, H)}
    assert r.answer == int(src.logits[0].argmax())                    # the clean run's top token
    best = torch.topk(src.logits[1], 2).indices.tolist()
    assert r.contrast == (best[1] if best[0] == r.answer else best[0])
    assert r.first_diff == 1 and np.all(r.scores[:, 0] == 0)         # the shared first token: nothing to restore
    assert not r.scores.flags.writeable
    rows = r.rows()
    assert len(rows) == n * T and rows[T + 2]["layer"] == 1 and rows[T + 2]["position"] == 2
    assert rows[T + 2]["score"] == r.scores[1, 2] and rows[T + 2]["corrupted_token"] == r.corrupted_tokens[2]
    assert [c for c in r.strongest(3)] == [tuple(np.unravel_index(i, r.scores.shape))
                                            for i in np.argsort(-r.scores, axis=None, kind="stable")[:3]]
    assert results["heads"].rows()[H + 1] == {"site": "heads", "layer": 1, "head": 1,
                                              "logit_diff": results["heads"].diffs[1, 1],
                                              "score": results["heads"].scores[1, 1]}


def test_patching_the_clean_run_into_itself_changes_nothing(tiny_model):
    a, _ = _ids(tiny_model)
    src = sources(tiny_model, a, a)
    read = unembedding_rows(tiny_model, [5, 7])
    n, T, H = tiny_model.n_layers, len(a), tiny_model.n_heads
    plan: dict[int, list[Patch]] = {0: [Patch("heads", l, h) for l in range(n) for h in range(H)]}
    for p in range(T):
        plan.setdefault(p, []).extend(Patch(s, l, p) for s in SITES[:3] for l in range(n))
    diffs = sweep(tiny_model, src, a, plan, read, None)
    clean = float(src.logits[0, 5] - src.logits[0, 7])
    assert len(diffs) == n * (3 * T + H)
    for value in diffs.values():
        assert float(value[0] - value[1]) == pytest.approx(clean, abs=1e-4)


def test_every_position_of_one_layer_restores_the_clean_answer(tiny_model):
    a, b = _ids(tiny_model)
    src = sources(tiny_model, a, b)
    rows = [tuple(Patch("resid_pre", l, p) for p in range(len(a))) for l in range(tiny_model.n_layers)]
    logits = patched(tiny_model, src, b, 0, rows, None)                # (n, V) full distributions
    for row in logits:
        torch.testing.assert_close(row, src.logits[0], atol=1e-4, rtol=1e-4)


def test_a_layers_heads_together_equal_its_attention_everywhere(tiny_model):
    a, b = _ids(tiny_model)
    src = sources(tiny_model, a, b)
    n, T = tiny_model.n_layers, len(a)
    heads = [tuple(Patch("heads", l, h) for h in range(tiny_model.n_heads)) for l in range(n)]
    attn = [tuple(Patch("attn_out", l, p) for p in range(1, T)) for l in range(n)]
    got = patched(tiny_model, src, b, 1, heads + attn, None)          # (2n, V)
    torch.testing.assert_close(got[:n], got[n:], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got[0], src.logits[1], atol=1e-3)       # and it did change the corrupted run


@pytest.mark.parametrize("clean, corrupted, reason", [
    ("", CORRUPTED, "empty"), (CLEAN, "   ", "empty"), (CLEAN, CLEAN, "same"),
    (CLEAN, "The hippopotamus sat on the mat because the dog was tired, and then the", "lengths"),
    ("word " * 40, "other " * 40, "too_long"),
])
def test_bad_pairs_are_refused_with_what_a_page_needs(tiny_gpt2, clean, corrupted, reason):
    with pytest.raises(PatchingError) as info:
        activation_patching(tiny_gpt2, clean, corrupted)
    err = info.value
    assert err.reason == reason and str(err)
    if reason == "empty":
        assert err.which == ("clean" if not clean else "corrupted")
    if reason == "too_long":
        assert err.cap == lib.MAX_TOKENS and err.counts[0] > lib.MAX_TOKENS and str(lib.MAX_TOKENS) in str(err)
    if reason == "lengths":
        assert err.counts == (15, 17) and "15" in str(err) and "17" in str(err)
        # the pieces where they differ (from the first changed token to the last), to suggest a same-length word
        assert err.parts == ((" cat", " sat", " on", " the", " mat", " because", " the", " cat"),
                             (" hipp", "opotam", "us", " sat", " on", " the", " mat", " because", " the", " dog"))


def test_answer_equal_to_contrast_and_unknown_sites_are_refused(tiny_gpt2):
    with pytest.raises(PatchingError) as info:
        activation_patching(tiny_gpt2, CLEAN, CORRUPTED, answer=" cat", contrast=" cat")
    assert info.value.reason == "same_answer" and info.value.parts == ((" cat",),)
    with pytest.raises(ValueError, match="resid_pre"):
        activation_patching(tiny_gpt2, CLEAN, CORRUPTED, site="resid_post")
    with pytest.raises(TypeError):
        activation_patching(tiny_gpt2, CLEAN, 42)


def test_a_chosen_answer_and_contrast(tiny_llama):
    r = activation_patching(tiny_llama, CLEAN, CORRUPTED, "mlp_out", answer=" cat", contrast=" dog")
    a, b = _ids(tiny_llama)
    assert r.answer_label == " cat" and r.contrast_label == " dog"
    assert r.clean_diff == pytest.approx(ref.run_diff(tiny_llama.hf_model, a, r.answer, r.contrast), abs=1e-4)


def test_small_memory_budget_splits_batches_and_changes_no_number(tiny_qwen3, monkeypatch):
    full = activation_patching(tiny_qwen3, CLEAN, CORRUPTED, "all")
    lib.forget(tiny_qwen3)
    monkeypatch.setenv("LLM_EXPLAINER_MEMORY_GB", str(8e-4))         # 0.8 MB: about ten rows per batch
    assert 1 < rows_per_batch(tiny_qwen3, 15, 14) < 14
    calls = []
    again = activation_patching(tiny_qwen3, CLEAN, CORRUPTED, "all", progress=lambda f, m: calls.append(f))
    for site in SITES:
        np.testing.assert_allclose(again[site].diffs, full[site].diffs, atol=1e-5)
    assert len(calls) > 14 and calls == sorted(calls) and calls[-1] == pytest.approx(1.0)   # 14 positions, split
    monkeypatch.setenv("LLM_EXPLAINER_MEMORY_GB", str(1e-6))
    lib.forget(tiny_qwen3)
    with pytest.raises(TooLarge):
        activation_patching(tiny_qwen3, CLEAN, CORRUPTED, "resid_pre")


def _hooks_left(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.hf_model.modules())


def test_cancelling_from_progress_leaves_the_model_clean(tiny_gemma3):
    lib.forget(tiny_gemma3)

    def cancel(fraction, message):
        if fraction > 0.2:
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        activation_patching(tiny_gemma3, CLEAN, CORRUPTED, "all", progress=cancel)
    assert _hooks_left(tiny_gemma3) == 0 and tiny_gemma3.lock.acquire(blocking=False)
    tiny_gemma3.lock.release()
    assert activation_patching(tiny_gemma3, CLEAN, CORRUPTED, "heads").scores.shape == (3, 4)


def test_a_room_asking_for_one_pair_costs_one_computation(tiny_gpt2):
    lib.forget(tiny_gpt2)
    before = lib._recent.misses
    seen: list[list[float]] = [[] for _ in range(6)]
    out = [None] * 6

    def ask(i: int) -> None:
        out[i] = activation_patching(tiny_gpt2, CLEAN, CORRUPTED, "all", progress=lambda f, m: seen[i].append(f))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lib._recent.misses == before + 1
    assert all(o is out[0] for o in out) and all(s[-1] == pytest.approx(1.0) for s in seen)


def test_hooks_act_only_for_the_thread_that_patches(tiny_llama):
    """A forward made meanwhile by another thread (input attribution runs without the lock) is untouched."""
    from explainer.capture import thread_hooks

    ids = torch.tensor([_ids(tiny_llama)[0]])
    with torch.no_grad():
        plain = tiny_llama.hf_model(input_ids=ids).logits
    block = tiny_llama.arch.blocks(tiny_llama.hf_model)[0]
    got = {}
    with thread_hooks() as hooks:
        hooks.before(block, lambda m, a, k: ((torch.zeros_like(a[0]), *a[1:]), k), with_kwargs=True)
        other = threading.Thread(target=lambda: got.setdefault("x", tiny_llama.hf_model(input_ids=ids).logits))
        with torch.no_grad():
            other.start()
            other.join()
            mine = tiny_llama.hf_model(input_ids=ids).logits
    assert torch.equal(got["x"].detach(), plain) and not torch.allclose(mine, plain)
    assert _hooks_left(tiny_llama) == 0


def test_shared_work_shows_waiters_the_progress_and_a_cancelled_one_is_taken_over():
    """ByteLRU.get_or_compute_shared: one computation per key; a waiter sees its progress; when the caller
    computing cancels (raises from its progress), a waiter computes instead and everyone else gets it."""
    from explainer.cache import ByteLRU

    cache: ByteLRU[str] = ByteLRU(4, size_of=lambda value: 1)
    started, go = threading.Event(), threading.Event()
    runs, seen, out = [], [], {}

    def compute(report, who):
        runs.append(who)
        report(0.5, "half")
        started.set()
        go.wait(5)
        report(1.0, "done")
        return f"by {who}"

    def cancel(fraction, message):
        if fraction == 1.0:
            raise KeyboardInterrupt("the first caller moved on")

    def first():
        with pytest.raises(KeyboardInterrupt):
            cache.get_or_compute_shared("pair", lambda r: compute(r, "first"), cancel, poll=0.01)

    def second():
        out["second"] = cache.get_or_compute_shared("pair", lambda r: compute(r, "second"),
                                                    lambda f, m: seen.append((f, m)), poll=0.01)

    a = threading.Thread(target=first)
    a.start()
    started.wait(5)
    b = threading.Thread(target=second)
    b.start()
    while not seen:
        threading.Event().wait(0.01)
    go.set()
    a.join()
    b.join()
    assert seen[0] == (0.5, "half")                                 # the first caller's progress, while waiting
    assert runs == ["first", "second"] and out["second"] == "by second"
    assert cache.get_or_compute_shared("pair", lambda r: compute(r, "third")) == "by second" and len(runs) == 2


def test_the_pairs_own_predictions_equal_a_plain_forward(tiny_model):
    """What the page draws before its maps: each prompt's next-token probabilities, no cell patched."""
    pred = lib.pair_prediction(tiny_model, CLEAN, CORRUPTED, k=3)
    assert pred.site == "" and pred.patched == () and 3 <= len(pred.ids) <= 6
    with torch.no_grad():
        for ids, got in zip(_ids(tiny_model), (pred.clean, pred.corrupted)):
            logits = tiny_model.hf_model(torch.tensor([ids])).logits[0, -1].double()
            probs = torch.softmax(logits, -1)
            np.testing.assert_allclose(got, probs[list(pred.ids)].numpy(), atol=1e-5)
            assert int(logits.argmax()) in pred.ids                           # each run's top token is there
    assert [row["patched"] for row in pred.rows()] == [None] * len(pred.ids)
    with pytest.raises(PatchingError):
        lib.pair_prediction(tiny_model, CLEAN, CLEAN)
