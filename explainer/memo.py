"""One memo for results computed from an (immutable) trace: :func:`per_trace`.

A result is remembered for as long as its trace lives (the trace cache owns traces, so a
forgotten trace takes its results with it) and is computed once even when thirty sessions ask
for it at the same moment (single flight). Arguments after the trace form the key (with their
defaults filled in, so ``f(t)`` and ``f(t, k=10)`` share one entry); a ``LoadedModel`` among
them is left out of the key (a trace belongs to one model). :func:`remembered` is the same
memo by hand, for results built piece by piece (the logit lens, one position at a time).
"""
from __future__ import annotations

import functools
import inspect
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


def recall(trace: Any, key: Hashable, default: Any = None) -> Any:
    """What is stored for ``key`` on ``trace``, or ``default`` (never computes)."""
    with _store_lock:
        return _store.get(trace, {}).get(key, default)


def per_trace(fn: Callable[..., R]) -> Callable[..., R]:
    """Decorate ``fn(..., trace, ...)``: remember its result per trace and per other arguments.

    The trace is the first argument that is not a ``LoadedModel``; every other argument except
    models must be hashable.
    """
    from explainer.models import LoadedModel

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        plain = [(name, value) for name, value in bound.arguments.items() if not isinstance(value, LoadedModel)]
        if not plain:
            raise TypeError(f"{fn.__name__} needs a trace to remember its result by.")
        trace, rest = plain[0][1], tuple(plain[1:])
        key = (fn.__module__, fn.__qualname__, rest)
        return remembered(trace, key, lambda: fn(*args, **kwargs))

    return wrapper


def forget(trace: Any) -> None:
    """Drop everything remembered for ``trace`` (tests and benchmarks)."""
    with _store_lock:
        _store.pop(trace, None)
