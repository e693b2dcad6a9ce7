"""How a number is written for people, one rule each: a count (``1.23 M``) and a size in bytes (``1.5 KB``).

Figures, pages and error messages all write big numbers through here.
"""
from __future__ import annotations


def human(n: float) -> str:
    """1234567 -> '1.23 M', 175e9 -> '175 B' (3 significant digits)."""
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.3g} {unit}"
    return f"{n:.3g}"


def human_bytes(n: float) -> str:
    """1536 → '1.5 KB' … in powers of 1024."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
