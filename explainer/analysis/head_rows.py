"""Head statistics from queries and keys, one row summary at a time: exact at any length.

Every head statistic (see :mod:`explainer.analysis.attention`) is an average over query rows of
either the row's entropy or a few single weights. Both follow from two numbers per row — the
log-normaliser ``lse_i = log Σ_j exp(s_ij)`` and the mean score ``E_p[s]_i = Σ_j p_ij s_ij`` —
because entropy = lse − E_p[s] and ``p_ij = exp(s_ij − lse_i)``. So no (T, T) pattern is ever
held: at 8,192 tokens a layer costs what its attention costs in a forward pass.
"""
from __future__ import annotations

import numpy as np
import torch

from explainer.blocks import QKV, row_chunks, weights_for


def layer_head_stats_streamed(parts: QKV, token_ids: torch.Tensor) -> dict[str, np.ndarray]:
    """:func:`layer_head_stats` from queries and keys, never holding a (T, T) pattern.

    Each query row's softmax is summed up by its log-normaliser ``lse`` and its mean score
    E_p[s]: entropy = lse − E_p[s] (nats), and any single weight is exp(s_ij − lse_i). So the
    statistics need only those two numbers per row plus the few scores they point at.
    """
    H, T = parts.q.shape[0], parts.n_tokens
    if T < 2:
        nan = np.full(H, np.nan)
        return {"entropy": np.zeros(H), "previous": nan, "first": nan, "induction": nan}
    lse, mean_score = row_summaries(parts)                              # (H, T) float64 each
    rows = torch.arange(1, T)
    entropy = (lse[:, 1:] - mean_score[:, 1:]).mean(-1) / np.log(2)     # nats → bits, (H,)
    previous = _weights_at(parts, lse, rows, rows - 1).mean(-1)          # (H,)
    first = _weights_at(parts, lse, rows, torch.zeros_like(rows)).mean(-1)
    qi, kj = _induction_pairs(token_ids)                                # (P,) queries and the keys they should read
    if qi.numel() == 0:
        induction = np.full(H, np.nan)
    else:
        per_query = torch.zeros(H, T, dtype=torch.double).index_add_(1, qi, _weights_at(parts, lse, qi, kj))
        queries = torch.zeros(T, dtype=torch.bool)
        queries[qi] = True
        induction = per_query[:, queries].mean(-1).numpy()
    return {"entropy": entropy.numpy(), "previous": previous.numpy(), "first": first.numpy(),
            "induction": induction}


def row_summaries(parts: QKV) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head and query row: log Σ_j exp(s_ij) and E_p[s] = Σ_j p_ij s_ij, both (H, T) float64.

    Both come from the fused attention kernel with the keys as values (Σ_j p_ij k_j, dotted with
    the query, is E_p[s] because a score is linear in its key) — the cost of that layer's
    attention in a forward pass. A layer that reads everything is one causal call; a windowed
    layer goes in row chunks, each over its keys with the window as a mask. Soft-capped scores
    are not linear in the key, so such layers (and machines without the kernel) are summed up
    chunk by chunk from the weights themselves.
    """
    if parts.softcap is None:
        fused = _fused_summaries(parts) if parts.window is None else _fused_window_summaries(parts)
        if fused is not None:
            return fused
    H, T = parts.q.shape[0], parts.n_tokens
    lse, mean_score = torch.empty(H, T, dtype=torch.double), torch.empty(H, T, dtype=torch.double)
    for rows, a, b in row_chunks(parts, H):
        w = weights_for(parts, rows, None, (a, b))                      # (H, R, K), 0 where hidden
        scores = _scores(parts, rows, a, b)                             # (H, R, K), -inf where hidden
        lse[:, rows] = torch.logsumexp(scores, dim=-1).double().cpu()
        mean_score[:, rows] = torch.where(w > 0, w * scores, 0.0).sum(-1).double().cpu()
    return lse, mean_score


def _fused(q: torch.Tensor, k: torch.Tensor, scale: float, causal: bool,
           mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The fused kernel's (output, lse) for queries q and keys k (1, H, ·, hd), values = keys."""
    try:
        with torch.inference_mode():
            if q.device.type == "cpu":
                return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                    q, k, k, 0.0, causal, attn_mask=mask, scale=scale)
            return torch.ops.aten._scaled_dot_product_efficient_attention(
                q, k, k, mask, True, 0.0, causal, scale=scale)[:2]
    except (RuntimeError, AttributeError, TypeError):                  # no fused kernel here
        return None


def _fused_summaries(parts: QKV) -> tuple[torch.Tensor, torch.Tensor] | None:
    kv = torch.tensor([parts.kv_head(h) for h in range(parts.q.shape[0])], device=parts.k.device)
    q, k = parts.q[None], parts.k[kv][None]                             # (1, H, T, hd) each
    got = _fused(q, k, parts.scale, causal=True)
    if got is None:
        return None
    out, lse = got
    mean_score = parts.scale * (q[0] * out[0]).sum(-1).double()         # (H, T)
    return lse[0].double().cpu(), mean_score.cpu()


def _fused_window_summaries(parts: QKV, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Row chunks of a windowed layer, each over keys [first row − window + 1, last row]."""
    H, T = parts.q.shape[0], parts.n_tokens
    kv = torch.tensor([parts.kv_head(h) for h in range(H)], device=parts.k.device)
    keys = parts.k[kv][None]                                            # (1, H, T, hd)
    lse, mean_score = torch.empty(H, T, dtype=torch.double), torch.empty(H, T, dtype=torch.double)
    for r0 in range(0, T, chunk):
        r1 = min(T, r0 + chunk)
        a = max(0, r0 - parts.window + 1)
        row, key = torch.arange(r0, r1)[:, None], torch.arange(a, r1)[None, :]
        hidden = (key > row) | (key <= row - parts.window)             # causal, and outside the window
        mask = torch.zeros(r1 - r0, r1 - a, device=keys.device).masked_fill(hidden.to(keys.device), float("-inf"))
        q = parts.q[None, :, r0:r1]                                     # (1, H, R, hd)
        got = _fused(q, keys[:, :, a:r1], parts.scale, causal=False, mask=mask[None, None])
        if got is None:
            return None
        out, part_lse = got
        lse[:, r0:r1] = part_lse[0].double().cpu()
        mean_score[:, r0:r1] = (parts.scale * (q[0] * out[0]).sum(-1)).double().cpu()
    return lse, mean_score


def _scores(parts: QKV, rows: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """Scaled (and soft-capped) scores of ``rows`` over keys [a, b), −inf where hidden: (H, R, K)."""
    kv = torch.tensor([parts.kv_head(h) for h in range(parts.q.shape[0])], device=parts.k.device)
    s = torch.matmul(parts.q[:, rows], parts.k[kv, a:b].transpose(1, 2)) * parts.scale
    if parts.softcap is not None:
        s = torch.tanh(s / parts.softcap) * parts.softcap
    key, row = torch.arange(a, b, device=s.device)[None], rows.to(s.device)[:, None]
    hidden = (key > row) | ((key <= row - parts.window) if parts.window is not None else False)
    return s.masked_fill(hidden[None], float("-inf"))


def _weights_at(parts: QKV, lse: torch.Tensor, qi: torch.Tensor, kj: torch.Tensor,
                chunk: int = 16_384) -> torch.Tensor:
    """Attention weight of query ``qi[p]`` on key ``kj[p]`` for every head: (H, P) float64.

    exp(s − lse) from the two vectors alone; 0 where the key is after the query or outside the window.
    """
    H = parts.q.shape[0]
    kv = torch.tensor([parts.kv_head(h) for h in range(H)], device=parts.k.device)
    keys = parts.k[kv]                                                   # (H, T, hd), once per layer
    out = torch.empty(H, qi.numel(), dtype=torch.double)
    for start in range(0, qi.numel(), chunk):
        i, j = qi[start:start + chunk], kj[start:start + chunk]
        s = (parts.q[:, i] * keys[:, j]).sum(-1) * parts.scale          # (H, c) float32, like the model
        if parts.softcap is not None:
            s = torch.tanh(s / parts.softcap) * parts.softcap
        w = torch.exp(s.cpu().double() - lse[:, i])
        hidden = j > i
        if parts.window is not None:
            hidden |= j <= i - parts.window
        out[:, start:start + chunk] = w.masked_fill(hidden[None], 0.0)
    return out


def _induction_pairs(token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(query i, key j+1) for every earlier copy j of token i with j + 1 < i: the keys an induction head reads."""
    ids = token_ids.long()
    order = torch.argsort(ids, stable=True)
    qi, kj = [], []
    sorted_ids = ids[order]
    starts = torch.nonzero(torch.diff(sorted_ids, prepend=sorted_ids[:1] - 1)).flatten().tolist() + [len(ids)]
    for s, e in zip(starts[:-1], starts[1:]):
        if e - s < 2:
            continue
        pos = order[s:e].sort().values                                  # positions of one repeated token
        i, j = torch.meshgrid(pos, pos, indexing="ij")
        keep = j + 1 < i
        qi.append(i[keep])
        kj.append(j[keep] + 1)
    if not qi:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(qi), torch.cat(kj)
