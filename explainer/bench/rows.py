"""What every benchmark section returns: table rows and the statistics they are made of.

Shared by ``explainer.bench`` (the runner and its report) and its sections (``library``,
``room``, ``cold``, ``app``).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Row:
    """One line of the table. ``value``/``target`` are numbers in ``unit``; None means no number."""

    section: int
    metric: str
    value: float | None = None
    unit: str = ""
    target: float | None = None       # pass when value <= target (every target here is a ceiling)
    note: str = ""                    # shown instead of / after the value (e.g. "skipped: no chromium")
    skipped: bool = False
    error: bool = False

    @property
    def result(self) -> str:
        return judge(self.value, self.target, skipped=self.skipped, error=self.error)


def judge(value: float | None, target: float | None, skipped: bool = False, error: bool = False) -> str:
    """"pass" / "FAIL" against a ceiling; "skipped", "error", or "info" (no target) otherwise."""
    if error:
        return "error"
    if skipped:
        return "skipped"
    if target is None:
        return "info"
    if value is None:
        return "FAIL"
    return "pass" if value <= target else "FAIL"


def fmt(value: float | None, unit: str) -> str:
    """A number with its unit, with sensible precision (``1.23 s``, ``45 ms``, ``587.2 MB``)."""
    if value is None:
        return "—"
    if unit == "×":
        return f"{value:.2f}×"
    if unit in ("s", "ms"):
        digits = 3 if abs(value) < 1 else 2 if abs(value) < 100 else 0
        return f"{value:.{digits}f} {unit}"
    if unit in ("MB", "kB"):
        return f"{value:.1f} {unit}"
    if unit == "":
        return f"{value:g}"
    return f"{value:g} {unit}"


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    s = sorted(xs)
    if not s:
        raise ValueError("no values")
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (k - lo))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out
