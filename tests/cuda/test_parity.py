"""On an NVIDIA GPU, every tiny family: the trace lives on the GPU, its pass waits for the GPU no more
than a plain forward does, and every accessor and every analysis a page draws equals the CPU's, with
results on the host. Skipped (never passed) where there is no CUDA device."""
from __future__ import annotations

import threading
import warnings

import pytest
import torch

import explainer
from explainer.devices import to_device
from tests.conftest import FAMILIES, tiny_hf_model
from tests.device_checks import TEXT, accessors, analyses, on_host, same

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
RTOL, ATOL = 1e-4, 1e-5                     # float32 on two devices (kernels differ; no TF32 in matmuls)


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, tokenizer):
    """(CPU model, its trace, the same weights on the GPU, its trace)."""
    cpu = explainer.wrap(tiny_hf_model(request.param, len(tokenizer)), tokenizer, f"tiny-{request.param}")
    gpu = explainer.wrap(tiny_hf_model(request.param, len(tokenizer)), tokenizer, f"tiny-{request.param}", "cuda")
    explainer.trace(gpu, "warm up")                                      # the model's fixed facts, read once
    return cpu, explainer.trace(cpu, TEXT), gpu, explainer.trace(gpu, TEXT)


def _syncs(fn) -> int:
    """How many times ``fn`` makes the host wait for the GPU (torch's sync debug mode)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in seen)


def test_the_trace_lives_on_the_gpu_and_its_pass_never_waits(pair):
    _, _, gpu, _ = pair
    ids = explainer.tokenize(gpu, TEXT)[0]
    plain = _syncs(lambda: gpu.hf_model(input_ids=to_device(torch.tensor([ids]), gpu.device), use_cache=False))
    box = {}
    traced = _syncs(lambda: box.setdefault("t", explainer.trace(gpu, TEXT + " Again.")))
    t = box["t"]
    assert traced <= plain, f"the trace waited for the GPU {traced} times, a plain forward {plain}"
    assert t.device.type == "cuda" and t._residual.is_cuda and t._last_logits.is_cuda
    assert all(v.is_cuda for v in t._summary.values()) and not t.token_ids.is_cuda


def test_every_accessor_equals_the_cpus_and_stays_on_the_gpu(pair):
    cpu, ct, gpu, gt = pair
    for name, get in accessors(cpu.n_layers - 1, cpu.arch.family == "gpt2").items():
        got, want = get(gt), get(ct)
        if isinstance(want, torch.Tensor):
            assert got.is_cuda, f"{name} came back to the host"
            got = got.cpu()
        same(got, want, name, RTOL, ATOL)


def test_every_analysis_equals_the_cpus_with_results_on_the_host(pair):
    cpu, ct, gpu, gt = pair
    for name, run in analyses(cpu.n_layers - 1, ct.n_tokens - 1, cpu.arch.family).items():
        got, want = run(gpu, gt), run(cpu, ct)
        on_host(got, name, lambda t: t.device.type != "cpu")
        same(got, want, name, RTOL, ATOL)


def test_concurrent_traces_on_the_gpu_equal_each_traced_alone(pair):
    _, _, gpu, _ = pair
    texts = [f"Student {i} asks: {TEXT[: 20 + 5 * i]}" for i in range(12)]
    alone = [explainer.trace(gpu, text) for text in texts]
    together: list = [None] * len(texts)
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, explainer.trace(gpu, texts[i])))
               for i in range(len(texts))]
    [th.start() for th in threads] + [th.join() for th in threads]
    for a, b in zip(together, alone):
        same(a.next_token_logits.cpu(), b.next_token_logits.cpu(), "logits", RTOL, ATOL)
        same(a.residual.cpu(), b.residual.cpu(), "residual", RTOL, ATOL)


def test_a_pass_replayed_as_a_cuda_graph_equals_the_usual_one(pair, monkeypatch):
    from explainer import graphs
    _, _, gpu, gt = pair
    monkeypatch.setenv(graphs.OPTION, "1")
    for _ in range(2):                                          # captured, then replayed
        got = explainer.trace(gpu, TEXT)
        same(got.next_token_logits.cpu(), gt.next_token_logits.cpu(), "logits", RTOL, ATOL)
        same(got.residual.cpu(), gt.residual.cpu(), "residual", RTOL, ATOL)
        same(got.mlp_peaks()[0].cpu(), gt.mlp_peaks()[0].cpu(), "MLP peaks", RTOL, ATOL)
    assert graphs._graphs[gpu], "no graph was captured"
