"""On an NVIDIA GPU, the embedded models (with whatever weights the machine has) read their whole
context: Gemma 3's 32,768 tokens in one trace, equal to a plain forward, within the memory the budget
planned for. Skipped (never passed) where there is no CUDA device."""
from __future__ import annotations

import time

import pytest
import torch

import explainer
from explainer import tracing
from explainer.bench.library import long_text
from explainer.devices import host, to_device

pytestmark = [pytest.mark.cuda, pytest.mark.integration,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def gemma():
    return explainer.load_model("gemma-3-270m", device="cuda")


def test_gemma_reads_its_whole_32768_token_context_on_the_gpu(gemma):
    text = long_text(5, sentences=4200)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base, start = torch.cuda.memory_allocated(), time.perf_counter()
    t = explainer.trace(gemma, text, max_tokens=32_768)
    torch.cuda.synchronize()
    seconds, peak = time.perf_counter() - start, torch.cuda.max_memory_allocated() - base
    estimate = tracing.estimate_bytes(gemma, t.n_tokens)
    print(f"32,768-token Gemma trace: {seconds:.2f} s, peak {peak / 2**30:.2f} GB, estimate {estimate / 2**30:.2f} GB")
    assert t.n_tokens == 32_768 and t.truncated and t.device.type == "cuda"
    with torch.inference_mode():
        plain = gemma.hf_model(input_ids=to_device(t.token_ids[None], gemma.device), use_cache=False,
                               logits_to_keep=1).logits[0, -1]
    assert float((t.next_token_logits - plain).abs().max() / plain.abs().max()) < 1e-4
    for layer in (0, 5, gemma.n_layers - 1):                 # local, global, last
        assert t.block_check(layer) / float(t.stream(layer + 1).abs().max()) < 1e-4
    window = host(t.attention(gemma.n_layers - 1, rows=range(32_768 - 64, 32_768), heads=[0]))   # (1, 64, T)
    assert torch.allclose(window.sum(-1), torch.ones(1, 64), atol=1e-4)
    assert peak <= estimate, f"the trace took {peak / 2**30:.2f} GB, more than the {estimate / 2**30:.2f} GB planned"


def test_both_models_equal_their_cpu_selves_on_the_gpu():
    text = "The capital of France is Paris. The capital of Germany is"
    for name in ("smollm2-135m", "gemma-3-270m"):
        cpu, gpu = explainer.load_model(name, device="cpu"), explainer.load_model(name, device="cuda")
        a, b = explainer.trace(gpu, text), explainer.trace(cpu, text)
        logits = host(a.next_token_logits)
        assert float((logits - b.next_token_logits).abs().max() / b.next_token_logits.abs().max()) < 1e-5, name
        assert torch.allclose(host(a.attention(3)), b.attention(3), atol=1e-5), name
