"""Memory budget: estimate what a request will take before it starts, refuse what cannot fit.

No input may make the process grow until the operating system kills it. Every trace and every
large on-demand tensor is estimated first; above the budget it is refused with a
:class:`TooLarge` error that says how much it needs and what to do. The budget is
``LLM_EXPLAINER_MEMORY_GB`` (gigabytes) when set, else a quarter of the machine's memory
(at most 8 GB). A model is a resource of its own: its weights are estimated from its config
before any is read and refused above :func:`model_budget_bytes` (``LLM_EXPLAINER_MODEL_GB``,
the same default), see :mod:`explainer.offer`.
"""
from __future__ import annotations

import os

from explainer.numbers import human_bytes

_GB = 2**30


class TooLarge(ValueError):
    """A request would need more memory than this server allows; the message says what to do."""


def budget_bytes() -> int:
    """Bytes one request may use."""
    return _gigabytes("LLM_EXPLAINER_MEMORY_GB")


def model_budget_bytes() -> int:
    """Bytes the weights of one model may take."""
    return _gigabytes("LLM_EXPLAINER_MODEL_GB")


def _gigabytes(variable: str) -> int:
    raw = os.environ.get(variable, "").strip()
    if raw:
        try:
            return max(int(float(raw) * _GB), 2**16)
        except ValueError:
            pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 16 * _GB
    return int(min(total // 4, 8 * _GB))


def check_fits(nbytes: int, what: str) -> None:
    """Raise :class:`TooLarge` when ``nbytes`` exceed the budget."""
    limit = budget_bytes()
    if nbytes > limit:
        raise TooLarge(f"{what[:1].upper()}{what[1:]} would need about {human_bytes(nbytes)}, more than the "
                       f"{human_bytes(limit)} this server allows for one request. Ask for fewer tokens, rows or "
                       f"layers at a time (or raise LLM_EXPLAINER_MEMORY_GB).")
