"""Queries and keys recomputed from the trace with the model's own weights.

The trace keeps attention *weights*, not the q and k vectors that produced them. Here we
rebuild them for one layer from the residual stream entering that block, exactly as the
model does:

- Llama family: ``input_layernorm`` → ``q_proj`` / ``k_proj`` → RoPE (the model's own
  ``rotary_emb`` cos/sin) → grouped-query attention: query head ``h`` reads KV head
  ``h // (n_heads / n_kv_heads)``. Scale ``1/√head_dim``.
- GPT-2: ``ln_1`` → ``c_attn`` (split into q, k, v) → heads; scale from the module.

Then for one query token we follow the four steps of attention with the real numbers:
q·k → ÷√d → causal mask → softmax. Only weights are read; no hooks, no forward pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from explainer.models import LoadedModel
from explainer.trace import Trace


@dataclass(frozen=True)
class QueryKeys:
    """q and k of every head of one layer. Shapes: q (H, T, hd), k (KV, T, hd)."""

    layer: int
    q: torch.Tensor               # after RoPE (Llama) — what the scores are made of
    k: torch.Tensor
    q_unrotated: torch.Tensor     # before RoPE (equal to q for GPT-2)
    k_unrotated: torch.Tensor
    scale: float                  # multiply q·k by this (1/√head_dim)
    group: int                    # query heads per KV head (1 without GQA)

    def kv_head(self, head: int) -> int:
        """The key/value head that query head ``head`` reads (grouped-query attention)."""
        return head // self.group


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
    scaled: torch.Tensor          # scores × scale
    masked: torch.Tensor          # scaled, with −inf for keys after the query (the causal mask)
    weights: torch.Tensor         # softmax(masked): the attention weights, 0 for future keys
    sharing: tuple[int, ...] = () # other query heads that read the same KV head (GQA)

    @property
    def visible(self) -> torch.Tensor:
        """(T,) True for keys the query may read (positions ≤ query)."""
        return torch.arange(self.scores.shape[0]) <= self.query

    def rows(self, start: int = 0, stop: int | None = None) -> list[tuple[int, float, float, float, float]]:
        """(position, q·k, scaled, masked, weight) for keys ``start .. stop-1``."""
        stop = self.scores.shape[0] if stop is None else stop
        return [(j, float(self.scores[j]), float(self.scaled[j]), float(self.masked[j]), float(self.weights[j]))
                for j in range(start, stop)]


def difference_from_trace(steps: QKSteps, trace: Trace) -> float:
    """Largest |recomputed weight − the model's own weight| for this query (should be ~1e-7)."""
    own = trace.attention(steps.layer)[steps.head, steps.query]            # (T,)
    return float((steps.weights - own).abs().max())


def query_keys(model: LoadedModel, trace: Trace, layer: int) -> QueryKeys:
    """Rebuild q and k of every head at ``layer`` from ``trace.residual[layer]``."""
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"There is no layer {layer} (layers 0–{model.n_layers - 1}).")
    block = model.arch.blocks(model.hf_model)[layer]
    attn = model.arch.attention(block)
    x = trace.residual[layer].to(model.device)                   # (T, d)
    T, hd = x.shape[0], model.head_dim
    with model.lock, torch.inference_mode():
        h = model.arch.attn_in_norm(block)(x)                    # (T, d)
        if model.arch.family == "gpt2":
            q, k, _ = attn.c_attn(h).split(model.d_model, dim=-1)  # each (T, d)
            q = q.view(T, model.n_heads, hd).transpose(0, 1)     # (H, T, hd)
            k = k.view(T, model.n_heads, hd).transpose(0, 1)     # (H, T, hd)
            q_rot, k_rot = q, k
        else:
            q = attn.q_proj(h).view(T, -1, hd).transpose(0, 1)   # (H, T, hd)
            k = attn.k_proj(h).view(T, -1, hd).transpose(0, 1)   # (KV, T, hd)
            positions = torch.arange(T, device=x.device)[None]   # (1, T)
            cos, sin = model.hf_model.model.rotary_emb(x[None], positions)  # (1, T, hd) each
            q_rot, k_rot = rotate(q, cos[0], sin[0]), rotate(k, cos[0], sin[0])
    scale = float(getattr(attn, "scaling", None) or 1 / math.sqrt(hd))
    group = model.n_heads // k_rot.shape[0]                     # query heads per KV head
    return QueryKeys(layer, q_rot.float().cpu(), k_rot.float().cpu(), q.float().cpu(), k.float().cpu(),
                     scale, group)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE as Llama applies it (halves, not interleaved pairs): x·cos + rotate_half(x)·sin.

    x (..., T, hd); cos, sin (T, hd).
    """
    half = x.shape[-1] // 2
    rotated_half = torch.cat((-x[..., half:], x[..., :half]), dim=-1)   # (..., T, hd)
    return x * cos + rotated_half * sin


def qk_steps(model: LoadedModel, trace: Trace, layer: int, head: int, query: int,
             qk: QueryKeys | None = None) -> QKSteps:
    """q·k → ÷√d → mask → softmax for query position ``query`` of ``head`` (real numbers)."""
    if not 0 <= head < model.n_heads:
        raise ValueError(f"There is no head {head} (heads 0–{model.n_heads - 1}).")
    if not 0 <= query < trace.n_tokens:
        raise ValueError(f"There is no token {query} (tokens 0–{trace.n_tokens - 1}).")
    qk = qk or query_keys(model, trace, layer)
    kv = qk.kv_head(head)
    q = qk.q[head, query].double()                               # (hd,)
    k = qk.k[kv].double()                                        # (T, hd)
    scores = k @ q                                               # (T,)
    scaled = scores * qk.scale
    future = torch.arange(trace.n_tokens) > query
    masked = scaled.masked_fill(future, float("-inf"))
    weights = torch.softmax(masked, dim=-1)
    sharing = tuple(h for h in range(model.n_heads) if h != head and qk.kv_head(h) == kv)
    return QKSteps(layer, head, kv, query, model.head_dim, qk.scale, scores.float(), scaled.float(),
                   masked.float(), weights.float(), sharing)
