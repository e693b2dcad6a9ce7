"""Each model's whole context where memory allows: no fixed 8,192 cap, the budget decides (on a GPU, from
that GPU's free memory), and a refusal says how many tokens would fit. Token labels are made lazily."""
from __future__ import annotations

import threading

import pytest
import torch

import explainer
from explainer import budget, models, tracing
from explainer.budget import TooLarge
from tests.conftest import tiny_hf_model


@pytest.fixture(scope="module")
def long_llama(tokenizer):
    """A tiny Llama whose context is longer than SmolLM2's 8,192 tokens."""
    hf = tiny_hf_model("llama", len(tokenizer))
    hf.config.max_position_embeddings = 8_300
    return explainer.wrap(hf, tokenizer, "tiny-long-llama")


def test_a_model_is_read_to_its_own_context_past_8192(long_llama):
    t = explainer.trace(long_llama, "word " * 9_000, max_tokens=40_000)
    assert t.n_tokens == 8_300 and t.truncated                          # its own context, past SmolLM2's
    assert tracing.MAX_TRACE_TOKENS == 32_768                           # Gemma 3's whole context


def test_a_refusal_says_how_many_tokens_fit_and_that_many_do(long_llama, monkeypatch):
    limit = tracing.estimate_bytes(long_llama, 3000) + 1
    monkeypatch.setenv("LLM_EXPLAINER_MEMORY_GB", str(limit / 2**30))
    with pytest.raises(TooLarge, match="tokens fit") as err:
        explainer.trace(long_llama, "word " * 9000, max_tokens=9000)
    fits = err.value.fits
    assert err.value.tokens == 8_300 and f"up to {fits:,} tokens fit" in str(err.value)
    assert tracing.estimate_bytes(long_llama, fits) <= budget.budget_bytes() < tracing.estimate_bytes(long_llama, fits + 1)
    assert 2900 <= fits <= 3000 and err.value.need > err.value.limit
    assert explainer.trace(long_llama, "word " * 9000, max_tokens=fits).n_tokens == fits


def test_the_budget_for_a_gpu_reads_that_gpus_free_memory(monkeypatch):
    monkeypatch.delenv("LLM_EXPLAINER_MEMORY_GB", raising=False)
    monkeypatch.setattr(budget, "free_bytes", lambda device: 10 * 2**30 if torch.device(device).type == "cuda" else None)
    host = budget.budget_bytes()
    assert budget.budget_bytes("cuda") == int(10 * 2**30 * budget.GPU_USABLE)
    assert budget.budget_bytes("cpu") == budget.budget_bytes(None) == host <= 8 * 2**30
    monkeypatch.setenv("LLM_EXPLAINER_MEMORY_GB", "4")                  # the setting caps a GPU too
    assert budget.budget_bytes("cuda") == 4 * 2**30
    with pytest.raises(TooLarge, match="more than the 4.0 GB"):
        budget.check_fits(5 * 2**30, "this", "cuda")


def test_the_context_of_a_model_is_told_from_its_name():
    assert models.context_length_of(None) == models.context_length_of("smollm2-135m") == 8192
    assert models.context_length_of("gemma-3-270m") == 32_768
    assert models.context_length_of(models.RANDOM_GPT2) == 1024
    assert models.context_length_of("HuggingFaceTB/SmolLM2-135M") is None          # a hub id: not without loading


def test_the_context_of_a_folder_comes_from_its_config(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama", "max_position_embeddings": 4096}')
    assert models.context_length_of(str(tmp_path)) == 4096
    (tmp_path / "config.json").write_text("not json")
    assert models.context_length_of(str(tmp_path)) is None


def test_token_labels_are_made_when_first_asked_and_once_per_text(tiny_llama, monkeypatch):
    from explainer import token_text
    made = []
    real = token_text.token_pieces
    monkeypatch.setattr(token_text, "token_pieces", lambda model, ids: made.append(len(ids)) or real(model, ids))
    text = "Labels are made later: 猫 and 🐱, once per text."
    t = explainer.trace(tiny_llama, text)
    assert made == []                                                   # the forward pass made none
    assert b"".join(t.token_bytes).decode("utf-8") == text and len(t.tokens) == t.n_tokens
    again = explainer.trace(tiny_llama, text, ablate_heads=[(0, 1)])
    results = []
    threads = [threading.Thread(target=lambda: results.append(again.tokens)) for _ in range(4)]
    [th.start() for th in threads] + [th.join() for th in threads]
    assert made == [t.n_tokens] and all(r == t.tokens for r in results)   # the same ids: made once


def test_running_out_of_device_memory_is_a_refusal_and_the_next_trace_is_served(tiny_llama, monkeypatch):
    real = tracing._forward

    def out_of_memory(model, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    monkeypatch.setattr(tracing, "_forward", out_of_memory)
    with pytest.raises(TooLarge, match="ran out of memory"):
        explainer.trace(tiny_llama, "word " * 50)
    monkeypatch.setattr(tracing, "_forward", real)
    assert explainer.trace(tiny_llama, "word " * 50).n_tokens > 1


def test_a_workers_traces_and_patching_read_their_models_device_budget(long_llama, monkeypatch):
    """A worker on a GPU checks a request against that GPU's memory, not the host's (here the model's
    device is made to report a GPU's worth of free memory while the host's budget is small)."""
    from explainer.analysis import patching_runs
    ids = explainer.tokenize(long_llama, "word " * 3000, max_tokens=3000)[0]
    monkeypatch.delenv("LLM_EXPLAINER_MEMORY_GB", raising=False)
    monkeypatch.setattr(budget, "_host_default", lambda: tracing.estimate_bytes(long_llama, 1000))
    [refused] = tracing.trace_ids(long_llama, [(ids, (frozenset(), frozenset()))])
    assert isinstance(refused, TooLarge)
    host_rows = patching_runs.rows_per_batch(long_llama, 32, 1)
    on_device = torch.device(long_llama.device)
    monkeypatch.setattr(budget, "free_bytes", lambda device: 2**40 if torch.device(device) == on_device else None)
    [traced] = tracing.trace_ids(long_llama, [(ids, (frozenset(), frozenset()))])
    assert traced.n_tokens == 3000
    assert host_rows < patching_runs.rows_per_batch(long_llama, 32, 1) == patching_runs.MAX_BATCH_TOKENS
