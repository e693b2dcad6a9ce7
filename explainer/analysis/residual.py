"""The residual stream through the layers: its size, what each block writes, and the logit lens.

Layer numbering on this page: row ``L`` of the residual stream is what enters block ``L``
(row 0 = the token vectors, row ``n`` = what leaves the last block). Block ``b`` (0-based,
like every other page) adds ``attn_out[b] + mlp_out[b]`` to turn row ``b`` into row ``b+1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explainer.analysis.lens import LogitLens, first_layer_with_answer, logit_lens_at
from explainer.devices import host
from explainer.memo import recall, remembered
from explainer.models import LoadedModel
from explainer.tokens import token_labels
from explainer.trace import Trace


@dataclass(frozen=True)
class ResidualNorms:
    """Length (L2 norm) of the residual vector at every layer and position."""

    tokens: tuple[str, ...]
    norms: np.ndarray                # (n+1, T) float32

    @property
    def n_layers(self) -> int:
        return self.norms.shape[0] - 1

    def rows(self) -> list[dict[str, object]]:
        """One row per layer, one column per position ("i:token")."""
        names = [f"{i}:{tok}" for i, tok in enumerate(self.tokens)]
        return [{"layer": layer, **dict(zip(names, row))} for layer, row in enumerate(self.norms.tolist())]

    @property
    def largest(self) -> tuple[int, int, float]:
        """(layer, position, norm) of the longest residual vector."""
        layer, pos = np.unravel_index(int(np.argmax(self.norms)), self.norms.shape)
        return int(layer), int(pos), float(self.norms[layer, pos])

    @property
    def typical(self) -> float:
        """The median norm over every layer and position."""
        return float(np.median(self.norms))

    def first_token_stands_out(self, factor: float = 10.0) -> bool:
        """Whether the longest vector is the first token's, ``factor`` times the typical norm."""
        _, pos, value = self.largest
        return pos == 0 and value > factor * self.typical


@dataclass(frozen=True)
class BlockWrites:
    """How much each block's attention and MLP add to the stream (L2 norm of what they write)."""

    tokens: tuple[str, ...]
    attn: np.ndarray                 # (n, T) float32
    mlp: np.ndarray                  # (n, T) float32
    attn_median: np.ndarray          # (n,) median over positions (robust to one huge position)
    mlp_median: np.ndarray           # (n,)
    position: int = -1               # the position ``rows()`` reads (set by :func:`block_writes`)

    def rows(self) -> list[dict[str, object]]:
        """Per block: what attention and the MLP write at ``position``, and their medians."""
        p = self.position
        return [{"block": b, "attention": float(self.attn[b, p]), "mlp": float(self.mlp[b, p]),
                 "attention_median": float(self.attn_median[b]), "mlp_median": float(self.mlp_median[b])}
                for b in range(self.attn.shape[0])]


@dataclass(frozen=True)
class LensReadout:
    """The logit lens with token texts for positions [start, start + W): column j is position start + j."""

    start: int
    tokens: tuple[str, ...]                   # the prompt's tokens at these positions (W,)
    top_labels: tuple[tuple[str, ...], ...]   # (n+1, W) top guess per layer and position
    top_probs: np.ndarray                     # (n+1, W) its probability
    answer_ids: tuple[int, ...]               # (W,) the model's final top-1 prediction
    answer_labels: tuple[str, ...]            # (W,)
    answer_probs: np.ndarray                  # (n+1, W) probability of the final answer per layer
    answer_ranks: np.ndarray                  # (n+1, W) its rank, 0 = top guess
    first_layers: tuple[int, ...]             # (W,) first layer from which the answer stays on top

    @property
    def n_layers(self) -> int:
        return self.top_probs.shape[0] - 1

    @property
    def stop(self) -> int:
        return self.start + len(self.tokens)

    def rows(self) -> list[dict[str, object]]:
        """One row per (layer, position): the lens's top guess there and its probability."""
        return [{"layer": layer, "position": self.start + j, "token": tok, "top_guess": self.top_labels[layer][j],
                 "top_prob": float(self.top_probs[layer, j])}
                for layer in range(self.n_layers + 1) for j, tok in enumerate(self.tokens)]


@dataclass(frozen=True)
class AnswerGrowth:
    """How the final prediction at one position forms, layer by layer (0..n)."""

    position: int
    token: str                       # the token at this position
    answer: str                      # the model's final prediction after it
    probs: np.ndarray                # (n+1,) probability of the answer at each layer
    ranks: np.ndarray                # (n+1,) its rank (0 = top)
    top_labels: tuple[str, ...]      # (n+1,) the top guess at each layer
    top_probs: np.ndarray            # (n+1,)
    first_layer: int                 # first layer from which the answer stays the top guess

    @property
    def n_layers(self) -> int:
        return len(self.probs) - 1

    def rows(self) -> list[dict[str, object]]:
        return [{"layer": layer, "answer": self.answer, "answer_prob": float(self.probs[layer]),
                 "answer_rank": int(self.ranks[layer]) + 1, "top_guess": self.top_labels[layer],
                 "top_prob": float(self.top_probs[layer])} for layer in range(self.n_layers + 1)]

    @property
    def rank_before_last(self) -> int:
        """The answer's rank one layer before the end (0 = already top)."""
        return int(self.ranks[-2]) if len(self.ranks) > 1 else 0


def residual_norms(trace: Trace) -> ResidualNorms:
    """L2 norm of the residual stream (n+1, T), one row at a time."""
    norms = torch.stack([trace.stream(layer).norm(dim=-1) for layer in range(trace.n_layers + 1)])   # (n+1, T)
    return ResidualNorms(trace.tokens, host(norms).numpy().astype(np.float32))


def block_writes(trace: Trace, position: int = -1) -> BlockWrites:
    """L2 norms of every attention and MLP output (n, T), and their medians over positions; its
    rows are read at ``position`` (default the last).

    The norms were measured during the forward pass itself (:meth:`Trace.write_norms`).
    """
    attn, mlp = trace.write_norms()                               # (n, T) each
    medians = (attn.median(dim=-1).values, mlp.median(dim=-1).values)   # (n,) each
    f32 = lambda t: host(t).numpy().astype(np.float32)            # noqa: E731
    return BlockWrites(trace.tokens, f32(attn), f32(mlp), f32(medians[0]), f32(medians[1]), int(trace.rows(position)[0]))


def lens_readout(model: LoadedModel, trace: Trace, start: int = 0, stop: int | None = None,
                 lens: LogitLens | None = None) -> LensReadout:
    """The logit lens at positions [start, stop) with token texts (``lens``: already computed there)."""
    stop = trace.n_tokens if stop is None else stop
    if not 0 <= start < stop <= trace.n_tokens:
        raise IndexError(f"Positions {start}–{stop - 1} are outside the prompt (0–{trace.n_tokens - 1}).")
    lens = logit_lens_at(model, trace, range(start, stop)) if lens is None else lens
    n1, W = lens.top_ids.shape
    ids = torch.cat([lens.top_ids.reshape(-1), lens.target_ids])
    unique, inverse = torch.unique(ids, return_inverse=True)
    names = token_labels(model, unique.tolist())
    labels = [names[i] for i in inverse.tolist()]
    return LensReadout(
        start=start, tokens=trace.tokens[start:stop],
        top_labels=tuple(tuple(labels[l * W:(l + 1) * W]) for l in range(n1)),
        top_probs=lens.top_probs.numpy().astype(np.float32),
        answer_ids=tuple(int(i) for i in lens.target_ids), answer_labels=tuple(labels[n1 * W:]),
        answer_probs=lens.target_probs.numpy().astype(np.float32),
        answer_ranks=lens.target_ranks.numpy().astype(np.int64),
        first_layers=tuple(first_layer_with_answer(lens, j) for j in range(W)))


def cached_lens_readout(model: LoadedModel, trace: Trace, start: int = 0, stop: int | None = None) -> LensReadout:
    """:func:`lens_readout`, computing each position at most once per trace (see explainer.memo).

    Every position costs a pass through the unembedding for every layer (about 0.1 s on a
    laptop CPU), so moving a view control only computes positions not seen before; each
    position's column is remembered on the trace, new ones are computed in contiguous runs.
    """
    stop = trace.n_tokens if stop is None else stop
    known = {p: recall(trace, ("lens column", p)) for p in range(start, stop)}
    for a, b in _runs([p for p, col in known.items() if col is None]):   # contiguous runs of new positions
        run = lens_readout(model, trace, a, b)
        for p in range(a, b):
            known[p] = remembered(trace, ("lens column", p), lambda p=p: _column(run, p - a))
    return _join([known[p] for p in range(start, stop)])


def lens_ready(trace: Trace, start: int, stop: int) -> bool:
    """Whether every position in [start, stop) of the lens is remembered already (no wait to show it)."""
    return all(recall(trace, ("lens column", p)) is not None for p in range(start, stop))


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and runs[-1][1] == p:
            runs[-1] = (runs[-1][0], p + 1)
        else:
            runs.append((p, p + 1))
    return runs


def _column(r: LensReadout, j: int) -> LensReadout:
    return LensReadout(r.start + j, r.tokens[j:j + 1], tuple(row[j:j + 1] for row in r.top_labels),
                       r.top_probs[:, j:j + 1], r.answer_ids[j:j + 1], r.answer_labels[j:j + 1],
                       r.answer_probs[:, j:j + 1], r.answer_ranks[:, j:j + 1], r.first_layers[j:j + 1])


def _join(cols: list[LensReadout]) -> LensReadout:
    """Side-by-side columns (consecutive positions) as one readout."""
    return LensReadout(
        start=cols[0].start, tokens=tuple(t for c in cols for t in c.tokens),
        top_labels=tuple(tuple(lab for c in cols for lab in c.top_labels[l]) for l in range(cols[0].n_layers + 1)),
        top_probs=np.concatenate([c.top_probs for c in cols], axis=1),
        answer_ids=tuple(i for c in cols for i in c.answer_ids),
        answer_labels=tuple(a for c in cols for a in c.answer_labels),
        answer_probs=np.concatenate([c.answer_probs for c in cols], axis=1),
        answer_ranks=np.concatenate([c.answer_ranks for c in cols], axis=1),
        first_layers=tuple(f for c in cols for f in c.first_layers))


def answer_growth(readout: LensReadout, position: int) -> AnswerGrowth:
    """The final prediction's probability and rank at every layer, at ``position`` (in the readout)."""
    if not readout.start <= position < readout.stop:
        raise IndexError(f"Position {position} is not in this readout ({readout.start}–{readout.stop - 1}).")
    j = position - readout.start
    return AnswerGrowth(
        position=position, token=readout.tokens[j], answer=readout.answer_labels[j],
        probs=readout.answer_probs[:, j].copy(), ranks=readout.answer_ranks[:, j].copy(),
        top_labels=tuple(row[j] for row in readout.top_labels), top_probs=readout.top_probs[:, j].copy(),
        first_layer=readout.first_layers[j])


def position_window(n_tokens: int, last: int, width: int) -> tuple[int, int]:
    """The window [start, stop) of at most ``width`` positions that ends at ``last`` (clamped)."""
    width = max(1, min(width, n_tokens))
    last = min(max(last, width - 1), n_tokens - 1)
    return last - width + 1, last + 1
