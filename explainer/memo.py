"""One memo for results computed from an (immutable) trace: :func:`per_trace`.

A result is remembered for as long as its trace lives (the trace cache owns traces, so a
forgotten trace takes its results with it) and is computed once even when thirty sessions ask
for it at the same moment (single flight). Arguments after the trace form the key; a
``LoadedModel`` among them is left out of the key (a trace belongs to one model).
"""
from __future__ import annotations

import functools
import threading
import weakref
from typing import Any, Callable, Hashable, TypeVar

R = TypeVar("R")

_store: "weakref.WeakKeyDictionary[Any, dict[Hashable, Any]]" = weakref.WeakKeyDictionary()
_store_lock = threading.Lock()
_flights: dict[tuple[int, Hashable], threading.Lock] = {}


def remembered(trace: Any, key: Hashable, compute: Callable[[], R]) -> R:
    """The value stored for ``key`` on ``trace``, computing it (once, even under concurrency) if absent."""
    with _store_lock:
        found = _store.get(trace, {})
        if key in found:
            return found[key]
        flight = _flights.setdefault((id(trace), key), threading.Lock())
    try:
        with flight:                                   # one thread computes, the others wait for it
            with _store_lock:
                found = _store.get(trace, {})
                if key in found:
                    return found[key]
            value = compute()                          # an exception stores nothing
            with _store_lock:
                _store.setdefault(trace, {})[key] = value
            return value
    finally:
        with _store_lock:
            _flights.pop((id(trace), key), None)


def per_trace(fn: Callable[..., R]) -> Callable[..., R]:
    """Decorate ``fn(..., trace, ...)``: remember its result per trace and per other arguments.

    The trace is the first argument that is not a ``LoadedModel``; every other argument except
    models must be hashable.
    """
    from explainer.models import LoadedModel

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        plain = [a for a in args if not isinstance(a, LoadedModel)]
        if not plain:
            raise TypeError(f"{fn.__name__} needs a trace to remember its result by.")
        trace, rest = plain[0], tuple(plain[1:])
        key = (fn.__module__, fn.__qualname__, rest, tuple(sorted(kwargs.items())))
        return remembered(trace, key, lambda: fn(*args, **kwargs))

    return wrapper


def forget(trace: Any) -> None:
    """Drop everything remembered for ``trace`` (tests and benchmarks)."""
    with _store_lock:
        _store.pop(trace, None)
