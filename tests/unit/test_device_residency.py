"""A trace stays on the device that computed it, and only results come to the host — checked on the CPU.

The model is put on a simulated device (``tests/device_sim.py``): its tensors say they live on ``cpu:0``,
``numpy()`` of them fails and mixing them with host tensors fails, as on a GPU, and every host read or
blocking host-to-device copy is logged. Then, for every family:

- the trace's tensors (residual stream, logits, the pass's summaries) and everything recomputed from
  them are on the device, and the pass reads nothing back to the host that a plain forward does not;
- every analysis a page draws returns host data only, equal to the same analysis of a host trace.
"""
from __future__ import annotations

import pytest
import torch

import explainer
from explainer import capture
from tests.conftest import FAMILIES, tiny_hf_model
from tests.device_checks import TEXT, accessors, analyses, on_host, same
from tests.device_sim import SIM, OnDevice, placement, simulated


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, tokenizer):
    """(host model, its host trace, the same weights on the simulated device, that device's trace)."""
    host = explainer.wrap(tiny_hf_model(request.param, len(tokenizer)), tokenizer, f"tiny-{request.param}")
    dev = simulated(explainer.wrap(tiny_hf_model(request.param, len(tokenizer)), tokenizer, f"tiny-{request.param}"))
    with placement():
        explainer.trace(dev, "warm up")                          # the model's fixed facts, read once
        dev_trace = explainer.trace(dev, TEXT)
    return host, explainer.trace(host, TEXT), dev, dev_trace


@pytest.mark.parametrize("batched", [False, True])
def test_the_pass_reads_nothing_back_that_a_plain_forward_does_not(pair, batched, monkeypatch):
    _, _, dev, _ = pair
    monkeypatch.setattr(capture, "BATCHED_ON", ("cuda", "cpu") if batched else ("cuda",))
    ids = explainer.tokenize(dev, TEXT)[0]
    with placement() as plain:
        with torch.inference_mode():
            dev.hf_model(input_ids=explainer.devices.to_device(torch.tensor([ids]), SIM), use_cache=False)
    with placement() as traced:
        t = explainer.trace(dev, TEXT + " Again.")
    assert sorted(traced) == sorted(plain), "the trace's pass waits for the device where a plain forward does not"
    assert t.device == SIM and isinstance(t._residual, OnDevice) and isinstance(t._last_logits, OnDevice)
    assert all(isinstance(v, OnDevice) for v in t._summary.values())
    assert not isinstance(t.token_ids, OnDevice)                 # the ids the model was given stay on the host


def test_every_accessor_computes_on_the_device(pair):
    host, ht, dev, dt = pair
    L = host.n_layers - 1
    with placement():
        for name, get in accessors(L, host.arch.family == "gpt2").items():
            got, want = get(dt), get(ht)
            if isinstance(want, torch.Tensor):
                assert isinstance(got, OnDevice), f"{name} came back to the host"
                got = got.cpu()
            same(got, want, name)


def test_every_analysis_returns_host_data_equal_to_the_hosts(pair):
    host, ht, dev, dt = pair
    L, q = host.n_layers - 1, ht.n_tokens - 1
    for name, run in analyses(L, q, host.arch.family, inputs=host.arch.family == "llama").items():
        want = run(host, ht)
        with placement():
            got = run(dev, dt)
        on_host(got, name, lambda t: isinstance(t, OnDevice))
        same(got, want, name)
