"""Attention patterns: windows of one head or a whole layer, what one token reads, head statistics.

Head statistics (one number per layer and head, averaged over the prompt). ``A`` is the
attention of one head, ``A[i, j]`` the weight query ``i`` gives key ``j`` (rows sum to 1,
``A[i, j] = 0`` for ``j > i``: the causal mask). Query 0 can only read itself, so every
average below skips it.

- **entropy** (bits): mean over queries ``i ≥ 1`` of ``−Σ_j A[i,j] log2 A[i,j]``. 0 = all
  weight on one key; high = spread out.
- **previous**: mean over ``i ≥ 1`` of ``A[i, i−1]`` — how much a token reads the one just before it.
- **first**: mean over ``i ≥ 1`` of ``A[i, 0]`` — how much it reads the first token (often a
  "resting place" for heads with nothing to do).
- **induction**: over queries ``i`` whose token appeared before at some ``j`` with ``j + 1 < i``,
  the mean of ``Σ_j A[i, j+1]`` (summed over all such earlier copies ``j``): the weight on the
  token that *followed* an earlier copy of the current token. NaN when no token repeats.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from typing import Callable

import numpy as np
import torch

from explainer.blocks import QKV, row_chunks, weights_for
from explainer.trace import Trace

MAX_WINDOW = 128
STATS = ("entropy", "previous", "first", "induction")


@dataclass(frozen=True)
class Window:
    """Positions ``start .. stop-1`` shown as both queries and keys."""

    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def __contains__(self, position: int) -> bool:
        return self.start <= position < self.stop


def window_for(n_tokens: int, start: int = 0, size: int = MAX_WINDOW) -> Window:
    """A window of at most ``size`` positions beginning near ``start`` (clamped to the prompt)."""
    size = max(1, min(size, n_tokens))
    start = min(max(0, start), n_tokens - size)
    return Window(start, start + size)


def window_around(n_tokens: int, position: int, size: int = MAX_WINDOW) -> Window:
    """The window of ``size`` positions ending at ``position`` (or the first ``size`` if it is early)."""
    return window_for(n_tokens, position - size + 1, size)


@dataclass(frozen=True)
class Pattern:
    """Attention of one or more heads inside a window. ``weights`` (heads, W, W), NaN where masked."""

    layer: int
    heads: tuple[int, ...]
    window: Window
    tokens: tuple[str, ...]       # the W token labels of the window
    weights: np.ndarray
    masked: np.ndarray            # (W, W) True where the key comes after the query

    def row_mass(self) -> np.ndarray:
        """(heads, W): how much of each query's attention falls inside the window (1 = all)."""
        return np.nansum(self.weights, axis=-1)


def pattern(trace: Trace, layer: int, heads: tuple[int, ...] | None = None, window: Window | None = None) -> Pattern:
    """Attention of ``heads`` (default: all) at ``layer`` for queries and keys in ``window``."""
    _check_layer(trace, layer)
    heads = tuple(range(trace.n_heads)) if heads is None else tuple(heads)
    window = window or window_for(trace.n_tokens)
    sl = slice(window.start, window.stop)
    w = trace.attention(layer, rows=range(window.start, window.stop), heads=heads)[:, :, sl].numpy()  # (h, W, W)
    pos = np.arange(window.start, window.stop)
    masked = pos[None, :] > pos[:, None]                                    # (W, W) key after query
    w = np.where(masked[None], np.nan, w)
    return Pattern(layer, heads, window, trace.tokens[sl], w, masked)


@dataclass(frozen=True)
class Reads:
    """What one query token reads: weight per key position 0..query."""

    layer: int
    head: int
    query: int
    weights: np.ndarray           # (query+1,)

    def top(self, k: int = 12, at_least: float = 0.0) -> list[tuple[int, float]]:
        """The ``k`` heaviest (position, weight) pairs with weight ≥ ``at_least``, heaviest first."""
        order = np.argsort(-self.weights, kind="stable")[:k]
        return [(int(j), float(self.weights[j])) for j in order if self.weights[j] >= at_least]

    def share_before(self, position: int) -> float:
        """Total weight on keys before ``position`` (e.g. outside the shown window)."""
        return float(self.weights[:max(0, position)].sum())


def reads(trace: Trace, layer: int, head: int, query: int) -> Reads:
    _check_layer(trace, layer)
    if not 0 <= query < trace.n_tokens:
        raise ValueError(f"There is no token {query} (tokens 0–{trace.n_tokens - 1}).")
    row = trace.attention(layer, rows=[query], heads=[head])[0, 0, : query + 1].numpy()
    return Reads(layer, head, query, row)


# ---------------------------------------------------------------- head statistics


@dataclass(frozen=True)
class HeadStats:
    """One value per (layer, head) for each statistic in :data:`STATS`; arrays (n_layers, H)."""

    entropy: np.ndarray
    previous: np.ndarray
    first: np.ndarray
    induction: np.ndarray         # all NaN when the prompt repeats no token

    def get(self, name: str) -> np.ndarray:
        if name not in STATS:
            raise ValueError(f"Unknown head statistic {name!r}; choose one of {', '.join(STATS)}.")
        return getattr(self, name)

    def best(self, name: str, lowest: bool = False) -> tuple[int, int] | None:
        """(layer, head) with the highest value of ``name`` (lowest with ``lowest``), None if all NaN."""
        values = self.get(name)
        if np.all(np.isnan(values)):
            return None
        flat = np.nanargmin(values) if lowest else np.nanargmax(values)
        layer, head = np.unravel_index(flat, values.shape)
        return int(layer), int(head)


def layer_head_stats(attention: torch.Tensor, token_ids: torch.Tensor) -> dict[str, np.ndarray]:
    """The four statistics of every head of one layer. attention (H, T, T) → dict of (H,) arrays."""
    H, T, _ = attention.shape
    nan = np.full(H, np.nan)
    if T < 2:
        return {"entropy": np.zeros(H), "previous": nan, "first": nan, "induction": nan}
    rows = attention[:, 1:].float()                                    # (H, T-1, T) queries i ≥ 1
    entropy = torch.special.entr(rows).sum(-1).double().mean(-1) / np.log(2)   # nats → bits, (H,)
    idx = torch.arange(1, T)
    previous = attention[:, idx, idx - 1].double().mean(-1)            # (H,)
    first = attention[:, 1:, 0].double().mean(-1)                      # (H,)
    return {"entropy": entropy.numpy(), "previous": previous.numpy(), "first": first.numpy(),
            "induction": _induction(attention, token_ids)}


def _induction(attention: torch.Tensor, token_ids: torch.Tensor) -> np.ndarray:
    """Mean over repeated-token queries of the weight on the tokens after earlier copies. (H, T, T) → (H,)."""
    ids = token_ids.long()
    T = ids.shape[0]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    earlier = (ids[:, None] == ids[None, :]) & (j + 1 < i)             # (T, T) [i, j]: an earlier copy
    qi, kj = earlier.nonzero(as_tuple=True)                            # (P,) pairs
    if qi.numel() == 0:
        return np.full(attention.shape[0], np.nan)
    picked = attention[:, qi, kj + 1].double()                         # (H, P) weight on the token after
    per_query = torch.zeros(attention.shape[0], T, dtype=torch.double).index_add_(1, qi, picked)  # (H, T)
    queries = earlier.any(-1)                                          # (T,)
    return per_query[:, queries].mean(-1).numpy()


def head_stats(trace: Trace, progress: Callable[[float, str], None] | None = None) -> HeadStats:
    """Statistics for every head of every layer, exact, in chunks of query rows (memory stays small
    at any length); ``progress(fraction, message)`` after each layer."""
    parts = []
    for layer in range(trace.n_layers):
        parts.append(layer_head_stats_streamed(trace.qkv(layer), trace.token_ids))
        if progress is not None:
            progress((layer + 1) / trace.n_layers, f"{layer + 1}/{trace.n_layers}")
    return HeadStats(**{name: np.stack([p[name] for p in parts]) for name in STATS})


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

    A layer that reads every earlier position gets both from one fused causal attention call
    with the keys as values (Σ_j p_ij k_j, dotted with the query, is E_p[s] because a score is
    linear in its key) — the cost of that layer's attention in a forward pass. Windowed or
    soft-capped layers go row chunk by row chunk (a window keeps them cheap).
    """
    fused = _fused_summaries(parts) if parts.window is None and parts.softcap is None else None
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


def _fused_summaries(parts: QKV) -> tuple[torch.Tensor, torch.Tensor] | None:
    kv = torch.tensor([parts.kv_head(h) for h in range(parts.q.shape[0])], device=parts.k.device)
    q, k = parts.q[None], parts.k[kv][None]                             # (1, H, T, hd) each
    try:
        with torch.inference_mode():
            if q.device.type == "cpu":
                out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                    q, k, k, 0.0, True, scale=parts.scale)
            else:
                out, lse = torch.ops.aten._scaled_dot_product_efficient_attention(
                    q, k, k, None, True, 0.0, True, scale=parts.scale)[:2]
    except (RuntimeError, AttributeError, TypeError):                  # no fused kernel here: chunk it
        return None
    mean_score = parts.scale * (q[0] * out[0]).sum(-1).double()         # (H, T)
    return lse[0].double().cpu(), mean_score.cpu()


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


_stats_cache: "weakref.WeakKeyDictionary[Trace, HeadStats]" = weakref.WeakKeyDictionary()
_stats_lock = threading.Lock()


def cached_head_stats(trace: Trace) -> HeadStats:
    """:func:`head_stats`, remembered for as long as the (immutable) trace lives."""
    with _stats_lock:
        hit = _stats_cache.get(trace)
    if hit is None:
        hit = head_stats(trace)
        with _stats_lock:
            _stats_cache[trace] = hit
    return hit


def most_previous_token_head(stats: HeadStats) -> tuple[int, int]:
    """The head that most reads the token just before (layer, head)."""
    return stats.best("previous")


def most_first_token_head(stats: HeadStats) -> tuple[int, int]:
    """The head that most rests on the first token (layer, head)."""
    return stats.best("first")


def most_induction_head(stats: HeadStats) -> tuple[int, int] | None:
    """The most induction-like head (layer, head), or None when the prompt repeats no token."""
    return stats.best("induction")


def most_focused_head(stats: HeadStats) -> tuple[int, int]:
    """The head with the lowest mean entropy (layer, head): it reads one token at a time."""
    return stats.best("entropy", lowest=True)


def _check_layer(trace: Trace, layer: int) -> None:
    if not 0 <= layer < trace.n_layers:
        raise ValueError(f"There is no layer {layer} (layers 0–{trace.n_layers - 1}).")
