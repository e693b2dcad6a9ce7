"""A trace stays on the device that computed it, and only results come to the host — checked on the CPU.

The model is put on a simulated device (``tests/device_sim.py``): its tensors say they live on ``cpu:0``,
``numpy()`` of them fails and mixing them with host tensors fails, as on a GPU, and every host read or
blocking host-to-device copy is logged. Then, for every family:

- the trace's tensors (residual stream, logits, the pass's summaries) and everything recomputed from
  them are on the device, and the pass reads nothing back to the host that a plain forward does not;
- every analysis a page draws returns host data only, equal to the same analysis of a host trace.
"""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import attention, attribution, compare, lens, mlp, overview, position, prediction, qk
from explainer.analysis import residual, tokens, tour, vocabulary, why, windows
from explainer.analysis.attribution_inputs import input_attribution
from explainer.analysis.generation import generate
from explainer.trace import Trace
from tests.conftest import FAMILIES, tiny_hf_model
from tests.device_sim import SIM, OnDevice, placement, simulated

TEXT = "The cat sat on the mat because the cat was tired, and then the dog sat on the cat."


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, tokenizer):
    """(host model, its host trace, the same weights on the simulated device, that device's trace)."""
    host = explainer.wrap(tiny_hf_model(request.param, len(tokenizer)), tokenizer, f"tiny-{request.param}")
    dev = simulated(explainer.wrap(tiny_hf_model(request.param, len(tokenizer)), tokenizer, f"tiny-{request.param}"))
    with placement():
        explainer.trace(dev, "warm up")                          # the model's fixed facts, read once
        dev_trace = explainer.trace(dev, TEXT)
    return host, explainer.trace(host, TEXT), dev, dev_trace


def test_the_pass_reads_nothing_back_that_a_plain_forward_does_not(pair):
    _, _, dev, _ = pair
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
        for name, get in _accessors(L, host.arch.family == "gpt2").items():
            got, want = get(dt), get(ht)
            if isinstance(want, torch.Tensor):
                assert isinstance(got, OnDevice), f"{name} came back to the host"
                got = got.cpu()
            _same(got, want, name)


def _accessors(L: int, learned_positions: bool) -> dict:
    out = {
        "residual": lambda t: t.residual, "stream": lambda t: t.stream(1), "stream_at": lambda t: t.stream_at([0, -1]),
        "next_token_logits": lambda t: t.next_token_logits, "attention": lambda t: t.attention(L),
        "attention rows": lambda t: t.attention(L, rows=[-1, 2], heads=[1]), "attentions": lambda t: t.attentions,
        "attn_out_at": lambda t: t.attn_out_at(L), "mlp_out_at rows": lambda t: t.mlp_out_at(0, rows=[3]),
        "mid": lambda t: t.mid(L), "mlp_activation": lambda t: t.mlp_activation(L, rows=[1, 2]),
        "logits_at": lambda t: t.logits_at([0, -1]), "logits": lambda t: t.logits, "embeddings": lambda t: t.embeddings,
        "write_norms": lambda t: t.write_norms()[0], "mlp_peaks": lambda t: t.mlp_peaks()[1],
        "block_check": lambda t: t.block_check(L) < 1e-4,
    }
    if learned_positions:
        out["positions"] = lambda t: t.positions
    return out


def test_every_analysis_returns_host_data_equal_to_the_hosts(pair):
    host, ht, dev, dt = pair
    L, q = host.n_layers - 1, ht.n_tokens - 1
    for name, run in _analyses(L, q, host.arch.family).items():
        want = run(host, ht)
        with placement():
            got = run(dev, dt)
        _on_host(got, name)
        _same(got, want, name)


def _analyses(L: int, q: int, family: str) -> dict:
    out = {
        "pattern": lambda m, t: attention.pattern(t, L),
        "reads": lambda m, t: attention.reads(t, L, 1, q),
        "head_stats": lambda m, t: attention.head_stats(t),
        "head_stats of an attention": lambda m, t: attention.layer_head_stats(t.attention(L), t.token_ids),
        "mlp_overview": lambda m, t: mlp.mlp_overview(t),
        "layer_activations": lambda m, t: mlp.layer_activations(t, L),
        "token_neurons": lambda m, t: mlp.token_neurons(t, L, -1),
        "neuron_effect": lambda m, t: mlp.neuron_effect(m, t, L, 3),
        "residual_norms": lambda m, t: residual.residual_norms(t),
        "block_writes": lambda m, t: residual.block_writes(t),
        "lens_readout": lambda m, t: residual.cached_lens_readout(m, t, 2, 6),
        "logit_lens": lambda m, t: lens.logit_lens(m, t),
        "attribution": lambda m, t: attribution.direct_logit_attribution(m, t),
        "answer_pushes": lambda m, t: why.answer_pushes(m, t),
        "switch_off": lambda m, t: why.switch_off_check(why.answer_pushes(m, t),
                                                        explainer.trace(m, TEXT, ablate_heads=[(L, 0)])),
        "next_token": lambda m, t: prediction.next_token(m, t, 0.7, 5, 0.9),
        "nucleus": lambda m, t: prediction.nucleus(m, t, 1.0, None, 0.8),
        "journey": lambda m, t: overview.journey(m, t),
        "model_card": lambda m, t: dataclasses.replace(overview.model_card(m), device="(where it runs)"),
        "qk_steps": lambda m, t: qk.qk_steps(m, t, L, 1, q),
        "qk difference": lambda m, t: qk.difference_from_trace(qk.qk_steps(m, t, L, 1, q), t) < 1e-5,
        "tour": lambda m, t: tour.plan_tour(m, t),
        "compare": lambda m, t: compare.compare_distributions(t.next_token_logits,
                                                              explainer.trace(m, "A dog.").next_token_logits, model=m),
        "prompt_vectors": lambda m, t: vocabulary.prompt_vectors(t),
        "windows": lambda m, t: windows.layer_windows(t, L),
        "token_stats": lambda m, t: tokens.token_stats(t),
        "generation": lambda m, t: generate(m, "The cat", 3),
        "input attribution": lambda m, t: input_attribution(m, "The cat sat on the", steps=8),
        "gradient x input": lambda m, t: input_attribution(m, "The cat sat on the", method="gradient_x_input"),
        "saved and loaded": lambda m, t: _round_trip(m, t),
    }
    if family == "gpt2":
        out["added_positions"] = lambda m, t: position.added_positions(t)
    else:
        out["real_distance"] = lambda m, t: position.real_distance_scores(qk.query_keys(m, t, L), 1, q)
    return out


def _round_trip(model, trace) -> tuple:
    buffer = io.BytesIO()
    trace.save(buffer)
    buffer.seek(0)
    back = Trace.load(buffer, model=model)
    return back.tokens, back.attention(1, rows=[-1]).cpu(), back.block_check(0) < 1e-4


def _on_host(value, where: str) -> None:
    """No tensor of ``value`` (a result, recursively) is on the device."""
    if isinstance(value, OnDevice):
        raise AssertionError(f"{where}: a result holds a tensor on the device")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _on_host(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            _on_host(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _on_host(v, f"{where}[{k!r}]")


def _same(got, want, where: str) -> None:
    """Equal values (tensors and arrays to float rounding), field by field."""
    if isinstance(want, torch.Tensor):
        assert got.shape == want.shape and torch.allclose(got.double(), want.double(), rtol=1e-5, atol=1e-6,
                                                          equal_nan=True), where
    elif isinstance(want, np.ndarray):
        assert got.shape == want.shape and np.allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True), where
    elif dataclasses.is_dataclass(want) and not isinstance(want, type):
        for f in dataclasses.fields(want):
            _same(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            _same(got[k], want[k], f"{where}[{k!r}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6, nan_ok=True), where
    else:
        assert got == want, where
