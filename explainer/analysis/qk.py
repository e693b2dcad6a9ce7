"""Queries and keys of one layer, and the four steps of attention with the real numbers.

The trace keeps the residual stream, not the q and k vectors that produced the attention
weights. They are rebuilt from the residual entering the block with the block's own modules
(:func:`explainer.blocks.qkv`): the norm before attention, the q/k projections, the per-head
q/k norms (Qwen3, Gemma 3), RoPE with the layer's own base, and grouped-query attention
(query head ``h`` reads key/value head ``h // group``). GPT-2 splits its fused ``c_attn``.

Then for one query token we follow attention step by step: q·k → × scale (1/√head_dim, or
Gemma's 1/√query_pre_attn_scalar) → mask (causal, plus the sliding window on local layers)
→ softmax. The result matches the model's own weights to ~1e-7.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from explainer.blocks import QKV, rotate  # noqa: F401 - rotate is part of this module's API
from explainer.devices import host
from explainer.models import LoadedModel
from explainer.trace import Trace

QueryKeys = QKV


@dataclass(frozen=True)
class QKSteps:
    """The four steps for one query token of one head; each array has one entry per key (T,)."""

    layer: int
    head: int
    kv_head: int
    query: int                    # position of the query token
    head_dim: int
    scale: float
    scores: torch.Tensor          # q·k for every key (future keys too, before masking)
    scaled: torch.Tensor          # scores × scale (and the model's soft cap, if it has one)
    masked: torch.Tensor          # scaled, with −inf for keys after the query or outside its window
    weights: torch.Tensor         # softmax(masked): the attention weights, 0 for hidden keys
    sharing: tuple[int, ...] = () # other query heads that read the same KV head (GQA)
    window: int | None = None     # the layer reads only the last ``window`` positions (None: all)
    scaled_by: str = "head_dim"   # where the scale comes from: "head_dim" (1/√head_dim),
                                  # "query_pre_attn_scalar" (Gemma's own setting) or "model" (other)
    qk_norm: bool = False         # q and k were RMS-normalised per head before RoPE (Qwen3, Gemma 3)
    kv_heads: int = 0             # key/value heads of the layer (0: not recorded)

    @property
    def scale_square(self) -> float:
        """The number whose square root the scores are divided by: 1 / scale² (64 for 1/8, 256 for 1/16)."""
        return 1.0 / self.scale ** 2

    @property
    def visible(self) -> torch.Tensor:
        """(T,) True for keys the query may read (inside the causal mask and the window)."""
        pos = torch.arange(self.scores.shape[0])
        seen = pos <= self.query
        if self.window is not None:
            seen &= pos > self.query - self.window
        return seen

    def rows(self, start: int = 0, stop: int | None = None) -> list[tuple[int, float, float, float, float]]:
        """(position, q·k, scaled, masked, weight) for keys ``start .. stop-1``."""
        stop = self.scores.shape[0] if stop is None else stop
        return [(j, float(self.scores[j]), float(self.scaled[j]), float(self.masked[j]), float(self.weights[j]))
                for j in range(start, stop)]


def difference_from_trace(steps: QKSteps, trace: Trace) -> float:
    """Largest |recomputed weight − the model's own weight| for this query (should be ~1e-7)."""
    own = host(trace.attention(steps.layer, rows=[steps.query], heads=[steps.head])[0, 0])   # (T,)
    return float((steps.weights - own).abs().max())


def query_keys(model: LoadedModel, trace: Trace, layer: int) -> QueryKeys:
    """q and k of every head at ``layer``, rebuilt from ``trace.residual[layer]`` (cached per trace)."""
    model.shape.check_layer(layer)
    return trace.qkv(layer)


def qk_steps(model: LoadedModel, trace: Trace, layer: int, head: int, query: int,
             qk: QueryKeys | None = None) -> QKSteps:
    """q·k → × scale → mask → softmax for query position ``query`` of ``head`` (real numbers)."""
    model.shape.check_head(head)
    if not 0 <= query < trace.n_tokens:
        raise ValueError(f"There is no token {query} (tokens 0–{trace.n_tokens - 1}).")
    qk = qk or query_keys(model, trace, layer)
    kv = qk.kv_head(head)
    q = host(qk.q[head, query]).double()                         # (hd,)
    k = host(qk.k[kv]).double()                                  # (T, hd)
    scores = k @ q                                               # (T,)
    scaled = scores * qk.scale
    if qk.softcap is not None:
        scaled = torch.tanh(scaled / qk.softcap) * qk.softcap
    pos = torch.arange(trace.n_tokens)
    hidden = pos > query
    if qk.window is not None:
        hidden |= pos <= query - qk.window
    masked = scaled.masked_fill(hidden, float("-inf"))
    weights = torch.softmax(masked, dim=-1)
    sharing = tuple(h for h in range(model.n_heads) if h != head and qk.kv_head(h) == kv)
    return QKSteps(layer, head, kv, query, model.head_dim, qk.scale, scores.float(), scaled.float(),
                   masked.float(), weights.float(), sharing, qk.window, scale_origin(model, qk.scale),
                   model.arch.qk_norm, qk.k.shape[0])


def scale_origin(model: LoadedModel, scale: float) -> str:
    """Where a layer's score scale comes from: "query_pre_attn_scalar" when the model sets it
    (Gemma: 1/√256), "head_dim" for the usual 1/√head_dim, else "model"."""
    own = getattr(model.hf_model.config, "query_pre_attn_scalar", None)
    if own and math.isclose(scale, float(own) ** -0.5, rel_tol=1e-6):
        return "query_pre_attn_scalar"
    return "head_dim" if math.isclose(scale, model.head_dim ** -0.5, rel_tol=1e-6) else "model"
