"""What a patching map says, in numbers: which cells bring the answer back, and where it is carried.

A sentence on the page ("Copying the residual at ‘Tower’ in layers 0–14 brings back ␣Paris; from
layer 18 on only the last position matters") is worded from these numbers by
``explainer.figures.patching``; nothing here chooses words.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explainer.analysis.patching import PatchingResult

STRONG = 0.5            # a cell "brings the answer back" when it restores at least half of its lead


@dataclass(frozen=True)
class Cell:
    """One cell of a map: a layer and a position (or a head), and its score."""

    layer: int
    index: int
    score: float


@dataclass(frozen=True)
class Carried:
    """Layers ``first`` … ``last`` where copying position ``position`` alone brings the answer back
    (each at least :data:`STRONG`); ``best`` is the largest score among them."""

    position: int
    first: int
    last: int
    best: float


@dataclass(frozen=True)
class MapSummary:
    """``top``: the strongest cells (largest score first). For the residual stream also ``early``: a
    position before the last that carries the answer through a run of layers, and ``late``: the
    first layer from which only the last position does (with the last layer's score there)."""

    site: str
    top: tuple[Cell, ...]
    early: Carried | None = None
    late: tuple[int, float] | None = None


def summarize(result: PatchingResult, k: int = 3) -> MapSummary:
    """The numbers behind the sentence that says what ``result``'s map shows."""
    s = result.scores
    top = tuple(Cell(l, i, float(s[l, i])) for l, i in result.strongest(k))
    if result.site != "resid_pre":
        return MapSummary(result.site, top)
    return MapSummary(result.site, top, _early(s), _late(s))


def _early(s: np.ndarray) -> Carried | None:
    """The position before the last whose residual brings the answer back in most layers, and the
    first unbroken run of such layers."""
    n, T = s.shape
    strong = s[:, :T - 1] >= STRONG                                              # (n, T-1)
    if not strong.any():
        return None
    position = int(np.argmax(strong.sum(0) + 1e-6 * s[:, :T - 1].max(0)))       # most layers; ties: larger score
    first = int(np.argmax(strong[:, position]))
    last = first
    while last + 1 < n and strong[last + 1, position]:
        last += 1
    return Carried(position, first, last, float(s[first:last + 1, position].max()))


def _late(s: np.ndarray) -> tuple[int, float] | None:
    """The first layer from which, in every layer after, only the last position brings the answer back."""
    n, T = s.shape
    alone = (s[:, -1] >= STRONG) & ((s[:, :-1] < STRONG).all(1) if T > 1 else True)   # (n,)
    if not alone[-1]:
        return None
    first = n - 1
    while first > 0 and alone[first - 1]:
        first -= 1
    return first, float(s[-1, -1])
