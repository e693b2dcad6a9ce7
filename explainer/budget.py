"""Memory budget: estimate what a request will take before it starts, refuse what cannot fit.

No input may make the process grow until the operating system kills it. Every trace and every
large on-demand tensor is estimated first; above the budget it is refused with a
:class:`TooLarge` error that says how much it needs and what to do (a trace also says how many
tokens would fit). On the host the budget is ``LLM_EXPLAINER_MEMORY_GB`` (gigabytes) when set,
else a quarter of the machine's memory (at most 8 GB). For tensors on a GPU it is that GPU's free
memory (:func:`explainer.devices.free_bytes`, less a tenth for fragmentation), and no more than
``LLM_EXPLAINER_MEMORY_GB`` when that is set.
A model is a resource of its own: its weights are estimated from its config before any is read
and refused above :func:`model_budget_bytes` (``LLM_EXPLAINER_MODEL_GB``, the host's default),
see :mod:`explainer.offer`.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from explainer.devices import free_bytes
from explainer.numbers import human_bytes

_GB = 2**30
GPU_USABLE = 0.9                  # the share of a GPU's free memory one request may plan on


class TooLarge(ValueError):
    """A request would need more memory than this server allows; the message says what to do.

    ``need`` and ``limit`` are bytes; for a trace, ``tokens`` is what was asked and ``fits`` how
    many tokens the same request could have (0: not even one).
    """

    def __init__(self, message: str, need: int = 0, limit: int = 0, tokens: int | None = None,
                 fits: int | None = None) -> None:
        super().__init__(message)
        self.need, self.limit, self.tokens, self.fits = need, limit, tokens, fits


def model_budget_bytes() -> int:
    """Bytes the weights of one model may take."""
    configured = _configured("LLM_EXPLAINER_MODEL_GB")
    return _host_default() if configured is None else configured


def _configured(variable: str = "LLM_EXPLAINER_MEMORY_GB") -> int | None:
    raw = os.environ.get(variable, "").strip()
    if raw:
        try:
            return max(int(float(raw) * _GB), 2**16)
        except ValueError:
            pass
    return None


def budget_bytes(device: torch.device | str | None = None) -> int:
    """Bytes one request may use: on the host (``device`` None or a CPU), or on ``device``'s GPU."""
    configured = _configured()
    gpu = None if device is None else free_bytes(device)
    if gpu is not None:
        usable = int(gpu * GPU_USABLE)
        return usable if configured is None else min(configured, usable)
    return _host_default() if configured is None else configured


def _host_default() -> int:
    """A quarter of the machine's memory, at most 8 GB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 16 * _GB
    return int(min(total // 4, 8 * _GB))


def check_fits(nbytes: int, what: str, device: torch.device | str | None = None) -> None:
    """Raise :class:`TooLarge` when ``nbytes`` (held on ``device``; None: the host) exceed the budget."""
    limit = budget_bytes(device)
    if nbytes > limit:
        raise TooLarge(f"{what[:1].upper()}{what[1:]} would need about {human_bytes(nbytes)}, more than the "
                       f"{human_bytes(limit)} this server allows for one request. Ask for fewer tokens, rows or "
                       f"layers at a time (or raise LLM_EXPLAINER_MEMORY_GB).", nbytes, limit)


def most_that_fit(cost: Callable[[int], int], limit: int, upper: int) -> int:
    """The largest n in 0..``upper`` with ``cost(n) <= limit`` (``cost`` grows with n)."""
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo
