"""One memo for results computed from an (immutable) trace or a loaded model: :func:`per_trace`,
:func:`per_model`.

A result is remembered for as long as its owner lives (the trace cache owns traces and the app
its models, so a forgotten trace or model takes its results with it) and is computed once even
when thirty sessions ask for it at the same moment (single flight). Arguments after the owner
form the key (with their defaults filled in, so ``f(t)`` and ``f(t, k=10)`` share one entry); a
``LoadedModel`` among a trace's arguments is left out of the key (a trace belongs to one model).
:func:`remembered` is the same memo by hand, for results built piece by piece (the logit lens,
one position at a time) or keyed by more than the arguments (a file's place).
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
    return _owned(fn, LoadedModel, owner_is_model=False)


def per_model(fn: Callable[..., R]) -> Callable[..., R]:
    """Decorate ``fn(model, ...)``: remember its result per loaded model and per other (hashable) arguments."""
    from explainer.models import LoadedModel
    return _owned(fn, LoadedModel, owner_is_model=True)


def _owned(fn: Callable[..., R], model_type: type, owner_is_model: bool) -> Callable[..., R]:
    """``fn`` remembered on its first trace argument (or its first model); models are never in the key."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        models = [name for name, value in bound.arguments.items() if isinstance(value, model_type)]
        owners = models[:1] if owner_is_model else [n for n in bound.arguments if n not in models][:1]
        if not owners:
            raise TypeError(f"{fn.__name__} needs {'a loaded model' if owner_is_model else 'a trace'} "
                            "to remember its result by.")
        rest = tuple((n, v) for n, v in bound.arguments.items() if n not in models and n != owners[0])
        key = (fn.__module__, fn.__qualname__, rest)
        return remembered(bound.arguments[owners[0]], key, lambda: fn(*args, **kwargs))

    return wrapper


def forget(trace: Any) -> None:
    """Drop everything remembered for ``trace`` (tests and benchmarks)."""
    with _store_lock:
        _store.pop(trace, None)
