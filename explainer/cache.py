"""Thread-safe caches that compute each key once (single flight): a byte-bounded LRU, and recent
results of long computations whose progress every waiter sees.

Thirty students asking for the same trace at once cause one forward pass; the cache keeps
recent traces up to a memory budget and forgets the oldest beyond it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class ByteLRU(Generic[V]):
    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for ``key``, computing it (once, even under concurrency) if absent."""
        with self._lock:
            found = self._lookup(key)
            if found is not None:
                return found
            key_lock = self._pending.setdefault(key, threading.Lock())
        with key_lock:                       # one thread computes, the others wait for it
            with self._lock:
                found = self._lookup(key)
                if found is not None:
                    return found
            value = compute()                # exceptions propagate and nothing is stored
            self._store(key, value)
        with self._lock:
            self._pending.pop(key, None)
        return value

    def _lookup(self, key: Hashable) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item[0]

    def _store(self, key: Hashable, value: V) -> None:
        size = self._size_of(value)
        with self._lock:
            self.misses += 1
            self._items[key] = (value, size)
            while len(self._items) > 1 and self.nbytes() > self.max_bytes:
                self._items.popitem(last=False)

    def nbytes(self) -> int:
        return sum(size for _, size in self._items.values())

    def items(self) -> list[tuple[Hashable, V]]:
        """What the cache holds now, oldest first."""
        with self._lock:
            return [(key, value) for key, (value, _) in self._items.items()]

    def __len__(self) -> int:
        return len(self._items)


class PartCache:
    """A trace's own LRU of recomputed parts (layers, queries and keys), bounded in bytes, safe
    across threads. Two sessions asking for the same part at once may both compute it (cheap)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Any) -> Any:
        with self._lock:
            item = self._items.get(key)
            return None if item is None else item[0]

    def get(self, key: Any, compute: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()
        with self._lock:
            self._items[key] = (value, size(value))
            while len(self._items) > 1 and sum(s for _, s in self._items.values()) > self.max_bytes:
                self._items.popitem(last=False)
        return value


class _Flight:
    """One computation in progress: its latest progress, then its value or error."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.fraction, self.message = 0.0, ""
        self.value: Any = None
        self.error: BaseException | None = None
        self.abandoned = False                   # the computing caller stopped it (cancelled from its progress)


class SharedWork(Generic[V]):
    """The last ``size`` results by key, each computed once at a time (single flight); whoever waits
    for a computation another caller started sees its progress.

    ``compute(progress)`` reports through the progress it is given. A caller cancels by raising from
    its own ``progress``: a waiter just stops waiting; the caller computing stops the computation,
    and one of the callers still waiting takes it over. Any other error reaches every waiter.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._running: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self.computed = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[Callable[[float, str], None]], V],
                       progress: Callable[[float, str], None] | None = None, poll: float = 0.2) -> V:
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                flight = self._running.get(key)
                leading = flight is None
                if leading:
                    flight = self._running[key] = _Flight()
            if leading:
                return self._lead(key, flight, compute, progress)
            while not flight.done.wait(poll):
                if progress is not None:
                    progress(flight.fraction, flight.message)
            if flight.error is None:
                if progress is not None:
                    progress(1.0, flight.message)
                return flight.value
            if not flight.abandoned:
                raise flight.error

    def _lead(self, key: Hashable, flight: _Flight, compute: Callable[[Callable[[float, str], None]], V],
              progress: Callable[[float, str], None] | None) -> V:
        def report(fraction: float, message: str) -> None:
            flight.fraction, flight.message = fraction, message
            if progress is not None:
                try:
                    progress(fraction, message)
                except BaseException:
                    flight.abandoned = True
                    raise

        try:
            value = compute(report)
        except BaseException as err:
            flight.error = err
            raise
        else:
            flight.value = value
            with self._lock:
                self.computed += 1
                self._items[key] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._running.pop(key, None)
            flight.done.set()

    def forget(self, match: Callable[[Hashable], bool]) -> None:
        """Drop the results whose key ``match`` accepts (tests and benchmarks)."""
        with self._lock:
            for key in [k for k in self._items if match(k)]:
                del self._items[key]
