"""Numbers made ready for a data download (and for compact figure JSON): :func:`rounded`.

Every exportable result has ``rows()``: a list of records (downloaded as CSV) or a mapping
of plain numbers and lists (downloaded as JSON). Arrays go in through :func:`rounded`.
"""
from __future__ import annotations

import math

import numpy as np


def rounded(values: np.ndarray, digits: int = 4) -> list:
    """Nested lists with NaN → None, rounded (keeps JSON small and valid)."""
    out = np.round(np.asarray(values, dtype=float), digits).tolist()
    if np.ndim(values) == 1:
        return [None if math.isnan(v) else v for v in out]
    return [[None if math.isnan(v) else v for v in row] for row in out]
