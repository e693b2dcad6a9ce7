"""Head statistics from queries and keys, one row summary at a time: exact at any length.

Every head statistic (see :mod:`explainer.analysis.attention`) is an average over query rows of
either the row's entropy or a few single weights. Both follow from two numbers per row — the
log-normaliser ``lse_i = log Σ_j exp(s_ij)`` and the mean score ``E_p[s]_i = Σ_j p_ij s_ij`` —
because entropy = lse − E_p[s] and ``p_ij = exp(s_ij − lse_i)``. So no (T, T) pattern is ever
held: a layer costs what its attention costs in a forward pass.

With ``sample=True`` a text over :data:`EXACT_ROWS` tokens is averaged over :data:`SAMPLED_ROWS`
query rows spread evenly over it (the last one always in): each row's numbers are still exact, the
average is an estimate, and the result says how many rows it read. At 8,192 tokens that is an
eighth of the work (the benchmark's §10); a page shows it first, flagged, while the exact average
over every row is computed (exactness wins; the estimate only comes sooner). Measured on SmolLM2
with a 4,096-token text, 1,024 rows against all 4,095: entropy within 0.06 bits (heads spread over
1.9 bits), the shares within 0.01 (heads spread over 0.12–0.27), and the same strongest head for
every statistic.
"""
from __future__ import annotations

import numpy as np
import torch

from explainer.blocks import QKV, row_chunks, weights_for
from explainer.devices import host, to_device

EXACT_ROWS = 4096          # with sample=True: up to this many tokens every query row is still read
SAMPLED_ROWS = 1024        # beyond it, this many rows spread evenly over the text


def query_rows(n_tokens: int, sample: bool = False) -> torch.Tensor:
    """The query rows the statistics average over (never row 0, which reads only itself): every
    row, or with ``sample`` and a text over :data:`EXACT_ROWS` tokens, an even sample of them."""
    if not sample or n_tokens - 1 <= EXACT_ROWS:
        return torch.arange(1, n_tokens)
    return torch.unique(torch.linspace(1, n_tokens - 1, SAMPLED_ROWS).round().long())


def layer_head_stats_streamed(parts: QKV, token_ids: torch.Tensor, sample: bool = False) -> dict[str, np.ndarray]:
    """:func:`layer_head_stats` from queries and keys, never holding a (T, T) pattern.

    Each query row's softmax is summed up by its log-normaliser ``lse`` and its mean score
    E_p[s]: entropy = lse − E_p[s] (nats), and any single weight is exp(s_ij − lse_i). So the
    statistics need only those two numbers per row plus the few scores they point at. Everything
    is computed on the device of the queries and keys; the four (H,) results come to the host at once.
    """
    H, T = parts.q.shape[0], parts.n_tokens
    if T < 2:
        nan = np.full(H, np.nan)
        return {"entropy": np.zeros(H), "previous": nan, "first": nan, "induction": nan}
    rows = query_rows(T, sample)                                         # (R,) on the host
    lse, mean_score = row_summaries(parts, None if rows.numel() == T - 1 else rows)   # (H, T) float64 each
    at = to_device(rows, lse.device)
    entropy = (lse[:, at] - mean_score[:, at]).mean(-1) / np.log(2)      # nats → bits, (H,)
    previous = _weights_at(parts, lse, rows, rows - 1).mean(-1)          # (H,)
    first = _weights_at(parts, lse, rows, torch.zeros_like(rows)).mean(-1)
    per_query, queries = _induction_weights(parts, lse, token_ids, rows)   # (H, T), (T,)
    count = queries.sum()
    summed = torch.where(queries[None], per_query, 0.0).sum(-1)           # (H,)
    induction = torch.where(count > 0, summed / count.clamp_min(1), torch.nan)
    found = host(torch.stack([entropy, previous, first, induction])).numpy()   # (4, H): one wait per layer
    return {"entropy": found[0], "previous": found[1], "first": found[2], "induction": found[3]}


def row_summaries(parts: QKV, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head and query row: log Σ_j exp(s_ij) and E_p[s] = Σ_j p_ij s_ij, both (H, T) float64 on the
    device of the queries (with ``rows``, a sorted subset of rows, only those are filled; the others are NaN).

    Both come from the fused attention kernel with the keys as values (Σ_j p_ij k_j, dotted with
    the query, is E_p[s] because a score is linear in its key) — the cost of that layer's
    attention in a forward pass. A layer that reads everything is one causal call; a windowed
    layer goes in row chunks, each over its keys with the window as a mask. Soft-capped scores
    are not linear in the key, so such layers (and machines without the kernel) are summed up
    chunk by chunk from the weights themselves.
    """
    if parts.softcap is None:
        fused = _fused_summaries(parts) if parts.window is None and rows is None else \
            _fused_window_summaries(parts, rows)
        if fused is not None:
            return fused
    H, T, dev = parts.q.shape[0], parts.n_tokens, parts.q.device
    lse = torch.full((H, T), torch.nan, dtype=torch.double, device=dev)
    mean_score = torch.full((H, T), torch.nan, dtype=torch.double, device=dev)
    wanted = None if rows is None else torch.zeros(T, dtype=torch.bool).index_fill_(0, rows, True)   # host
    for chunk, a, b in row_chunks(parts, H):
        if wanted is not None:
            chunk = chunk[wanted[chunk]]
            if chunk.numel() == 0:
                continue
        w = weights_for(parts, chunk, None, (a, b))                     # (H, R, K), 0 where hidden
        scores = _scores(parts, chunk, a, b)                            # (H, R, K), -inf where hidden
        at = to_device(chunk, dev)
        lse[:, at] = torch.logsumexp(scores, dim=-1).double()
        mean_score[:, at] = torch.where(w > 0, w * scores, 0.0).sum(-1).double()
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
    q, k = parts.q[None], parts.k.index_select(0, parts.kv_index())[None]   # (1, H, T, hd) each
    got = _fused(q, k, parts.scale, causal=True)
    if got is None:
        return None
    out, lse = got                                                      # a GPU kernel may pad lse's rows
    mean_score = parts.scale * (q[0] * out[0]).sum(-1).double()         # (H, T)
    return lse[0, :, :parts.n_tokens].double(), mean_score


def _fused_window_summaries(parts: QKV, rows: torch.Tensor | None = None,
                            chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Row chunks (of every row, or of ``rows``), each over the keys its rows may read
    ([first row − window + 1, last row]) with the causal mask and the window as a mask."""
    H, T, dev = parts.q.shape[0], parts.n_tokens, parts.q.device
    keys = parts.k.index_select(0, parts.kv_index())[None]              # (1, H, T, hd)
    lse = torch.full((H, T), torch.nan, dtype=torch.double, device=dev)
    mean_score = torch.full((H, T), torch.nan, dtype=torch.double, device=dev)
    window = parts.window if parts.window is not None else T + 1
    rows = torch.arange(T) if rows is None else rows
    for c0 in range(0, rows.numel(), chunk):
        chunk_rows = rows[c0:c0 + chunk]                                # sorted, on the host
        r_first, r_last = int(chunk_rows[0]), int(chunk_rows[-1])
        a = max(0, r_first - window + 1)
        row, key = chunk_rows[:, None], torch.arange(a, r_last + 1)[None, :]
        hidden = (key > row) | (key <= row - window)                   # causal, and outside the window
        mask = to_device(torch.zeros(row.shape[0], key.shape[1]).masked_fill(hidden, float("-inf")), dev)
        at = to_device(chunk_rows, dev)
        q = parts.q[None].index_select(2, at)                           # (1, H, R, hd)
        got = _fused(q, keys[:, :, a:r_last + 1], parts.scale, causal=False, mask=mask[None, None])
        if got is None:
            return None
        out, part_lse = got
        lse[:, at] = part_lse[0, :, :chunk_rows.numel()].double()       # a GPU kernel may pad lse's rows
        mean_score[:, at] = (parts.scale * (q[0] * out[0]).sum(-1)).double()
    return lse, mean_score


def _scores(parts: QKV, rows: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """Scaled (and soft-capped) scores of ``rows`` over keys [a, b), −inf where hidden: (H, R, K)."""
    at = to_device(rows, parts.q.device)
    s = torch.matmul(parts.q.index_select(1, at), parts.k.index_select(0, parts.kv_index())[:, a:b].transpose(1, 2))
    s = s * parts.scale
    if parts.softcap is not None:
        s = torch.tanh(s / parts.softcap) * parts.softcap
    key, row = torch.arange(a, b, device=s.device)[None], at[:, None]
    hidden = (key > row) | ((key <= row - parts.window) if parts.window is not None else False)
    return s.masked_fill(hidden[None], float("-inf"))


def _weights_at(parts: QKV, lse: torch.Tensor, qi: torch.Tensor, kj: torch.Tensor,
                chunk: int = 16_384) -> torch.Tensor:
    """Attention weight of query ``qi[p]`` on key ``kj[p]`` (host positions) for every head: (H, P) float64,
    on the device of ``lse``.

    exp(s − lse) from the two vectors alone; 0 where the key is after the query or outside the window.
    """
    H, dev = parts.q.shape[0], lse.device
    keys = parts.k.index_select(0, parts.kv_index())                     # (H, T, hd), once per layer
    qi, kj = to_device(qi, dev), to_device(kj, dev)
    out = torch.empty(H, qi.numel(), dtype=torch.double, device=dev)
    for start in range(0, qi.numel(), chunk):
        i, j = qi[start:start + chunk], kj[start:start + chunk]
        s = (parts.q.index_select(1, i) * keys.index_select(1, j)).sum(-1) * parts.scale   # (H, c) float32
        if parts.softcap is not None:
            s = torch.tanh(s / parts.softcap) * parts.softcap
        w = torch.exp(s.double() - lse.index_select(1, i))
        hidden = j > i
        if parts.window is not None:
            hidden |= j <= i - parts.window
        out[:, start:start + chunk] = w.masked_fill(hidden[None], 0.0)
    return out


def _induction_weights(parts: QKV, lse: torch.Tensor, token_ids: torch.Tensor, rows: torch.Tensor,
                       block: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head and query row: the weight on the tokens right after earlier copies of the query's
    token (H, T) float64, and which rows (of ``rows``) have such a copy (T,) bool — both on the device.

    Token by token: the queries at a repeated token's positions against the keys just after its
    earlier positions, one small matrix product each (a text that repeats a token n times makes
    n² pairs; a product does them at matrix speed). A key outside a layer's window weighs 0. Which
    token sits where is worked out on the host from the ids; the device only multiplies, with masks
    instead of selections, so nothing waits for it.
    """
    ids = token_ids.long().cpu()
    H, T, dev = parts.q.shape[0], ids.numel(), lse.device
    keys = parts.k.index_select(0, parts.kv_index())                    # (H, T, hd), once per layer
    per_query = torch.zeros(H, T, dtype=torch.double, device=dev)
    queries = torch.zeros(T, dtype=torch.bool, device=dev)
    wanted = to_device(torch.zeros(T, dtype=torch.bool).index_fill_(0, rows, True), dev)
    order = torch.argsort(ids, stable=True)
    sorted_ids = ids[order]
    starts = torch.nonzero(torch.diff(sorted_ids, prepend=sorted_ids[:1] - 1)).flatten().tolist() + [T]
    spans = [(s, e) for s, e in zip(starts[:-1], starts[1:]) if e - s >= 2]
    if not spans:
        return per_query, queries
    repeated = torch.cat([order[s:e].sort().values for s, e in spans])  # positions, token by token
    placed = to_device(repeated, dev)
    done = 0
    for s, e in spans:
        pos = placed[done:done + e - s]                                 # (n,) one repeated token's positions
        after = pos[:-1] + 1                                            # the keys an induction head reads
        done += e - s
        for b0 in range(0, pos.numel(), block):
            qi = pos[b0:b0 + block]                                     # (Q,)
            reads = (after[None, :] < qi[:, None]) & wanted[qi][:, None]   # (Q, K): an earlier copy, not adjacent
            if parts.window is not None:
                reads &= after[None, :] > qi[:, None] - parts.window
            s_ = torch.matmul(parts.q.index_select(1, qi), keys.index_select(1, after).transpose(1, 2))
            s_ = s_ * parts.scale                                       # (H, Q, K)
            if parts.softcap is not None:
                s_ = torch.tanh(s_ / parts.softcap) * parts.softcap
            w = torch.exp(s_.double() - lse.index_select(1, qi)[..., None])   # (H, Q, K); NaN off the sample
            per_query.index_add_(1, qi, torch.where(reads[None], w, 0.0).sum(-1))
            queries[qi] = (after[None, :] < qi[:, None]).any(-1) & wanted[qi]
    return per_query, queries
