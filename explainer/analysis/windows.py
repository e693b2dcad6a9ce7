"""Local and global layers: which layers read only a window of recent tokens, and each layer's mask.

Every query reads itself and the keys before it (the causal mask). A *local* layer reads only
the last ``window`` of those (itself included): Gemma 3 has five local layers with a 512-token
window, then one *global* layer that reads every earlier token, three times over, and each kind
has its own rotary base. Other families read everything at every layer. Numbers only: the words
are the page's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from explainer.shape import check_layer
from explainer.trace import Trace

READS, LATER, OLDER = 0, 1, 2     # the cells of a mask: read, hidden by the causal mask, older than the window


@dataclass(frozen=True)
class LayerWindows:
    """Per layer: the window it reads (None: every earlier token) and its rotary base."""

    windows: tuple[int | None, ...]
    thetas: tuple[float | None, ...]      # None: no rotary positions (GPT-2)
    n_tokens: int                         # the prompt's length

    @property
    def n_layers(self) -> int:
        return len(self.windows)

    @property
    def local(self) -> tuple[int, ...]:
        """The layers that read only a window."""
        return tuple(l for l, w in enumerate(self.windows) if w is not None)

    @property
    def global_layers(self) -> tuple[int, ...]:
        """The layers that read every earlier token."""
        return tuple(l for l, w in enumerate(self.windows) if w is None)

    @property
    def window(self) -> int | None:
        """The widest window of any local layer (None: no layer has one)."""
        return max((w for w in self.windows if w is not None), default=None)

    @property
    def period(self) -> int | None:
        """n when exactly every n-th layer is global (layers n−1, 2n−1, …) and the rest local; else None."""
        found = self.global_layers
        if not self.local or not found:
            return None
        n = found[0] + 1
        return n if found == tuple(range(n - 1, self.n_layers, n)) else None

    def is_local(self, layer: int) -> bool:
        return self.windows[layer] is not None

    def cuts(self, layer: int) -> bool:
        """True when the window hides keys on this prompt (the prompt is longer than the window)."""
        window = self.windows[layer]
        return window is not None and self.n_tokens > window

    def rows(self) -> list[dict[str, object]]:
        return [{"layer": l, "reads": "window" if w is not None else "all", "window": w, "rope_theta": theta}
                for l, (w, theta) in enumerate(zip(self.windows, self.thetas))]


def layer_windows(trace: Trace) -> LayerWindows:
    """Which layers of ``trace``'s model are local, with their rotary bases."""
    windows = tuple(trace.windows) if len(trace.windows) == trace.n_layers else (None,) * trace.n_layers
    thetas: list[float | None] = [None] * trace.n_layers
    infos = trace.rotaries or ((trace.rotary,) if trace.rotary is not None else ())
    for info in infos:
        for layer in info.layers or range(trace.n_layers):
            thetas[layer] = float(info.theta)
    return LayerWindows(windows, tuple(thetas), trace.n_tokens)


@dataclass(frozen=True)
class MaskShape:
    """The mask of one layer drawn over ``span`` positions, ``step`` positions per cell.

    ``cells`` (C, C): rows are queries, columns keys; :data:`READS`, :data:`LATER` (after the
    query) or :data:`OLDER` (before the query, but outside a local layer's window). The span is
    at least twice the widest window, so the window's edge shows even on a short prompt.
    """

    layer: int
    window: int | None
    n_tokens: int
    span: int
    step: int
    cells: np.ndarray

    @property
    def n_cells(self) -> int:
        return int(self.cells.shape[0])

    def rows(self) -> dict[str, object]:
        return {"layer": self.layer, "window": self.window, "positions": self.span, "positions_per_cell": self.step,
                "cells": self.cells.tolist(), "legend": {"reads": READS, "later": LATER, "older": OLDER}}


def mask_shape(lw: LayerWindows, layer: int, max_cells: int = 128) -> MaskShape:
    """The mask of ``layer`` over max(prompt, 2 × widest window) positions, at most ``max_cells`` a side.

    A cell stands for the query and key at its centre.
    """
    check_layer(layer, lw.n_layers)
    window, widest = lw.windows[layer], lw.window
    span = max(lw.n_tokens, 2 * widest if widest else 0, 1)
    step = math.ceil(span / max_cells)
    n = math.ceil(span / step)
    centre = np.arange(n) * step + (step - 1) / 2                       # (C,) position at each cell's centre
    q, k = centre[:, None], centre[None, :]
    cells = np.full((n, n), READS, dtype=np.int8)
    cells[k > q] = LATER
    if window is not None:
        cells[k <= q - window] = OLDER
    return MaskShape(layer, window, lw.n_tokens, span, step, cells)
