"""What every page asks of a trace, run on two devices and compared: shared by the simulated-device
tests (``tests/unit/test_device_residency.py``) and the CUDA tests (``tests/cuda``).

:func:`analyses` lists one call per analysis a page draws; :func:`on_host` checks a result holds no
tensor on a device (results come to the host at the figure boundary); :func:`same` compares two
results field by field.
"""
from __future__ import annotations

import dataclasses
import io
from typing import Callable

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import attention, attribution, compare, lens, mlp, overview, position, prediction, qk
from explainer.analysis import patching, residual, tokens, tour, vocabulary, why, windows
from explainer.analysis.attribution_inputs import InputAttribution, input_attribution
from explainer.analysis.generation import generate
from explainer.trace import Trace

TEXT = "The cat sat on the mat because the cat was tired, and then the dog sat on the cat."
PAIR = ("The cat sat on the mat because it was", "The dog sat on the mat because it was")   # patching


def accessors(L: int, learned_positions: bool) -> dict[str, Callable]:
    """name → f(trace) for every accessor of a trace (``L`` a layer)."""
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


def analyses(L: int, q: int, family: str, inputs: bool = True) -> dict[str, Callable]:
    """name → f(model, trace) for every analysis a page draws (``L`` a layer, ``q`` a query position;
    ``inputs``: also input attribution, which runs the model many times)."""
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
        "windows": lambda m, t: windows.layer_windows(t),
        "token_stats": lambda m, t: tokens.token_stats(t),
        "generation": lambda m, t: generate(m, "The cat", 3),
        "saved and loaded": lambda m, t: round_trip(m, t),
        "patching": lambda m, t: patching.activation_patching(m, *PAIR, site="all"),
        "patched cell": lambda m, t: patching.patched_prediction(
            m, patching.activation_patching(m, *PAIR, site="heads"), L, 1),
        "pair prediction": lambda m, t: patching.pair_prediction(m, *PAIR),
    }
    if inputs:
        words = "The cat sat on the"
        out["input attribution"] = lambda m, t: timeless(input_attribution(m, words, steps=8))
        out["refined segments"] = lambda m, t: timeless(input_attribution(m, words, budget_s=60.0))
        out["gradient x input"] = lambda m, t: timeless(input_attribution(m, words, method="gradient_x_input"))
        out["occlusion"] = lambda m, t: timeless(input_attribution(m, words, method="occlusion"))
    if family == "gpt2":
        out["added_positions"] = lambda m, t: position.added_positions(t)
    else:
        out["real_distance"] = lambda m, t: position.real_distance_scores(qk.query_keys(m, t, L), 1, q)
    return out


def timeless(result: InputAttribution) -> InputAttribution:
    """An input attribution without the seconds it took (the one field two equal runs differ in)."""
    path = None if result.path is None else dataclasses.replace(result.path, seconds=0.0)
    return dataclasses.replace(result, seconds=0.0, path=path)


def round_trip(model, trace) -> tuple:
    """Saved to a file and read back with its model: labels, an attention row, a block recomputed."""
    buffer = io.BytesIO()
    trace.save(buffer)
    buffer.seek(0)
    back = Trace.load(buffer, model=model)
    return back.tokens, back.attention(1, rows=[-1]).cpu(), back.block_check(0) < 1e-4


def on_host(value, where: str, on_device: Callable[[torch.Tensor], bool]) -> None:
    """No tensor of ``value`` (a result, recursively) is on the device (``on_device`` tells)."""
    if isinstance(value, torch.Tensor) and on_device(value):
        raise AssertionError(f"{where}: a result holds a tensor on the device")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            on_host(getattr(value, f.name), f"{where}.{f.name}", on_device)
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            on_host(v, f"{where}[{i}]", on_device)
    elif isinstance(value, dict):
        for k, v in value.items():
            on_host(v, f"{where}[{k!r}]", on_device)


def same(got, want, where: str, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Equal values (tensors and arrays to float rounding), field by field."""
    if isinstance(want, torch.Tensor):
        assert got.shape == want.shape and torch.allclose(got.double(), want.double(), rtol=rtol, atol=atol,
                                                          equal_nan=True), where
    elif isinstance(want, np.ndarray):
        assert got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True), where
    elif dataclasses.is_dataclass(want) and not isinstance(want, type):
        for f in dataclasses.fields(want):
            same(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}", rtol, atol)
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            same(a, b, f"{where}[{i}]", rtol, atol)
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            same(got[k], want[k], f"{where}[{k!r}]", rtol, atol)
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=rtol, abs=atol, nan_ok=True), where
    else:
        assert got == want, where
