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

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from explainer.analysis import head_rows
from explainer.analysis.head_rows import layer_head_stats_streamed, query_rows
from explainer.analysis.qk import QKSteps
from explainer.devices import host
from explainer.export import rounded
from explainer.memo import recall, remembered
from explainer.serving.remote import remotable
from explainer.trace import Trace

MAX_WINDOW = 128
REMOTE_FROM = 1024           # with a cluster, head statistics of texts this long are computed there
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
    masked: np.ndarray            # (W, W) True where the key comes after the query (the causal mask)
    outside: np.ndarray | None = None   # (W, W) True where the key is older than the layer's window
    reach: int | None = None      # the layer's window: a query reads the last ``reach`` positions (None: all)

    def index_of(self, head: int | None) -> int:
        """Where ``head`` sits in ``heads`` (and in ``weights``); the first for None or a head not here."""
        return self.heads.index(head) if head in self.heads else 0

    def of_head(self, head: int) -> "Pattern":
        """The same numbers for one head (its rows are what a page exports for it)."""
        k = self.index_of(head)
        return replace(self, heads=(self.heads[k],), weights=self.weights[k:k + 1])

    @property
    def hidden(self) -> np.ndarray:
        """(W, W) True where the query may not read the key: later (causal) or older than the window."""
        return self.masked if self.outside is None else self.masked | self.outside

    def row_mass(self) -> np.ndarray:
        """(heads, W): how much of each query's attention falls inside the window (1 = all)."""
        return np.nansum(self.weights, axis=-1)

    def rows(self) -> dict[str, object]:
        """The first head's weights in the window (JSON: NaN where masked is null); see :meth:`of_head`."""
        return {"layer": self.layer, "head": self.heads[0],
                "positions": [self.window.start, self.window.stop], "tokens": list(self.tokens),
                "weights": rounded(self.weights[0])}


def pattern(trace: Trace, layer: int, heads: tuple[int, ...] | None = None, window: Window | None = None) -> Pattern:
    """Attention of ``heads`` (default: all) at ``layer`` for queries and keys in ``window``."""
    trace.shape.check_layer(layer)
    heads = tuple(range(trace.n_heads)) if heads is None else tuple(heads)
    window = window or window_for(trace.n_tokens)
    sl = slice(window.start, window.stop)
    w = host(trace.attention(layer, rows=range(window.start, window.stop), heads=heads)[:, :, sl]).numpy()  # (h, W, W)
    pos = np.arange(window.start, window.stop)
    masked = pos[None, :] > pos[:, None]                                    # (W, W) key after query
    reach = layer_reach(trace, layer)
    outside = None if reach is None else pos[None, :] <= pos[:, None] - reach   # (W, W) older than the window
    w = np.where(masked[None] if outside is None else (masked | outside)[None], np.nan, w)
    return Pattern(layer, heads, window, trace.tokens[sl], w, masked, outside, reach)


def layer_reach(trace: Trace, layer: int) -> int | None:
    """How many positions back (itself included) a query of ``layer`` reads; None: every earlier one."""
    return trace.windows[layer] if layer < len(trace.windows) else None


@dataclass(frozen=True)
class Reads:
    """What one query token reads: weight per key position 0..query."""

    layer: int
    head: int
    query: int
    weights: np.ndarray           # (query+1,)
    tokens: tuple[str, ...] = ()  # the prompt's token labels (all positions)
    window: Window | None = None  # the positions a page shows

    def rows(self) -> list[dict[str, object]]:
        return [{"position": j, "token": self.tokens[j] if j < len(self.tokens) else "", "weight": float(w)}
                for j, w in enumerate(self.weights)]

    def top(self, k: int = 12, at_least: float = 0.0) -> list[tuple[int, float]]:
        """The ``k`` heaviest (position, weight) pairs with weight ≥ ``at_least``, heaviest first."""
        order = np.argsort(-self.weights, kind="stable")[:k]
        return [(int(j), float(self.weights[j])) for j in order if self.weights[j] >= at_least]

    def share_before(self, position: int) -> float:
        """Total weight on keys before ``position`` (e.g. outside the shown window)."""
        return float(self.weights[:max(0, position)].sum())


def reads(trace: Trace, layer: int, head: int, query: int, window: Window | None = None) -> Reads:
    """The weights ``query`` gives keys 0..query at one head (``window``: the positions a page shows)."""
    trace.shape.check_layer(layer)
    if not 0 <= query < trace.n_tokens:
        raise ValueError(f"There is no token {query} (tokens 0–{trace.n_tokens - 1}).")
    row = host(trace.attention(layer, rows=[query], heads=[head])[0, 0, : query + 1]).numpy()
    return Reads(layer, head, query, row, trace.tokens, window or window_for(trace.n_tokens))


@dataclass(frozen=True)
class KeySteps:
    """The q·k steps of one query (:class:`explainer.analysis.qk.QKSteps`) over the keys a page shows."""

    steps: QKSteps
    tokens: tuple[str, ...]       # the prompt's token labels (all positions)
    window: Window

    def rows(self) -> list[dict[str, object]]:
        """Per key in the window: q·k, scaled, masked (−inf after the query) and the weight."""
        return [{"position": j, "token": self.tokens[j], "score": score, "scaled": scaled, "masked": masked,
                 "weight": weight} for j, score, scaled, masked, weight in self.steps.rows(self.window.start,
                                                                                      self.window.stop)]


def key_steps(steps: QKSteps, trace: Trace, window: Window) -> KeySteps:
    return KeySteps(steps, trace.tokens, window)


# ---------------------------------------------------------------- head statistics


@dataclass(frozen=True)
class HeadStats:
    """One value per (layer, head) for each statistic in :data:`STATS`; arrays (n_layers, H)."""

    entropy: np.ndarray
    previous: np.ndarray
    first: np.ndarray
    induction: np.ndarray         # all NaN when the prompt repeats no token
    windows: tuple[int | None, ...] = ()     # per layer: the window it reads (None: all); () if unknown
    rows_read: int = 0                       # query rows averaged over (fewer than n_rows: an even sample)
    n_rows: int = 0                          # query rows the text has (every token after the first)

    @property
    def sampled(self) -> bool:
        return 0 < self.rows_read < self.n_rows

    def rows(self) -> dict[str, object]:
        return {name: rounded(self.get(name)) for name in STATS}

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
    attention = host(attention)
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


@remotable(local_if=lambda trace, *args, **kwargs: trace.n_tokens < REMOTE_FROM)
def head_stats(trace: Trace, progress: Callable[[float, str], None] | None = None, sample: bool = False) -> HeadStats:
    """Statistics for every head of every layer, exact at any length without a (T, T) pattern
    (:mod:`explainer.analysis.head_rows`); ``progress(fraction, message)`` after each layer.
    ``sample``: past 4,096 tokens average over an even sample of 1,024 (exact) rows — sooner, flagged."""
    parts = []
    for layer in range(trace.n_layers):
        parts.append(layer_head_stats_streamed(trace.qkv(layer), trace.token_ids, sample))
        if progress is not None:
            progress((layer + 1) / trace.n_layers, f"{layer + 1}/{trace.n_layers}")
    return HeadStats(**{name: np.stack([p[name] for p in parts]) for name in STATS}, windows=tuple(trace.windows),
                     rows_read=int(query_rows(trace.n_tokens, sample).numel()), n_rows=max(trace.n_tokens - 1, 0))


def cached_head_stats(trace: Trace, progress: Callable[[float, str], None] | None = None,
                      sample: bool = False) -> HeadStats:
    """:func:`head_stats`, remembered for as long as the (immutable) trace lives (``progress``
    only reports the first computation; it is not part of the key). Where the sample would be
    every row, or the exact result is there already, both ask for the same entry."""
    estimate = sample and estimate_first(trace)
    return remembered(trace, ("head_stats", estimate), lambda: head_stats(trace, progress, estimate))


def head_stats_ready(trace: Trace) -> bool:
    """Whether the exact head statistics of ``trace`` are remembered already (no wait to show them)."""
    return recall(trace, ("head_stats", False)) is not None


def estimate_first(trace: Trace) -> bool:
    """Whether a sampled estimate is worth showing first: a text long enough to be sampled whose
    exact statistics are not remembered yet."""
    return trace.n_tokens - 1 > head_rows.EXACT_ROWS and not head_stats_ready(trace)


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


