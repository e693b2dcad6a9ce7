"""The one bounded cache: a thread-safe LRU that computes each key once (single flight).

Thirty students asking for the same trace at once cause one forward pass. The same class keeps
the shared traces (bounded in bytes), a trace's recomputed parts (bounded in bytes), recent
input attributions, activation-patching maps and the outcomes of background jobs (bounded in
number: ``size_of=lambda value: 1``; the maps' waiters see the one computation's progress). Results
that live exactly as long as one trace or one model are :mod:`explainer.memo`'s.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")
Progress = Callable[[float, str], None]


class ByteLRU(Generic[V]):
    """At most ``max_bytes`` in total ``size_of(value)`` (bytes, or 1 per entry to bound a count); the
    oldest go first, though the newest entry is always kept. An exception while computing stores nothing."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Lock] = {}
        self._boards: dict[Hashable, list] = {}              # get_or_compute_shared: each computation's progress
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for ``key``, computing it (once, even under concurrency) if absent."""
        return self.get_or_compute_flagged(key, compute)[0]

    def get_or_compute_flagged(self, key: Hashable, compute: Callable[[], V]) -> tuple[V, bool]:
        """The value for ``key`` and whether this call computed it."""
        with self._lock:
            found = self._lookup(key)
            if found is not None:
                return found, False
            key_lock = self._pending.setdefault(key, threading.Lock())
        try:
            with key_lock:                       # one thread computes, the others wait for it
                with self._lock:
                    found = self._lookup(key)
                    if found is not None:
                        return found, False
                value = compute()                # exceptions propagate and nothing is stored
                self._store(key, value)
                return value, True
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def get(self, key: Hashable) -> V | None:
        """The value for ``key`` if it is held (never computes; counts as a use)."""
        with self._lock:
            return self._lookup(key)

    def peek(self, key: Hashable) -> V | None:
        """The value for ``key`` if it is held (never computes, does not count as a use)."""
        with self._lock:
            item = self._items.get(key)
            return None if item is None else item[0]

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

    def drop(self, which: Callable[[Hashable], bool]) -> None:
        """Forget every entry whose key ``which`` accepts."""
        with self._lock:
            for key in [k for k in self._items if which(k)]:
                del self._items[key]

    def nbytes(self) -> int:
        """The total size of what is held (bytes, or entries)."""
        return sum(size for _, size in self._items.values())

    def items(self) -> list[tuple[Hashable, V]]:
        """What the cache holds now, oldest first."""
        with self._lock:
            return [(key, value) for key, (value, _) in self._items.items()]

    def __len__(self) -> int:
        return len(self._items)

    def get_or_compute_shared(self, key: Hashable, compute: Callable[[Progress], V], progress: Progress | None = None,
                              poll: float = 0.2) -> V:
        """:meth:`get_or_compute` for a long computation: ``compute(report)`` runs once for everyone who
        asks meanwhile, and each of them sees its progress through their own ``progress(fraction,
        message)``. Raising from ``progress`` stops that caller only: a waiter stops waiting; the one
        computing stops computing, and a caller still waiting takes the computation over."""
        with self._lock:
            found = self._lookup(key)
            if found is not None:
                return found
            key_lock = self._pending.setdefault(key, threading.Lock())
            board = self._boards.setdefault(key, [0.0, ""])          # the computation's latest progress
        try:
            while not key_lock.acquire(timeout=poll):                   # another caller computes it
                if progress is not None:
                    progress(*board)
            try:
                with self._lock:
                    found = self._lookup(key)
                if found is not None:
                    if progress is not None:
                        progress(1.0, board[1])
                    return found

                def report(fraction: float, message: str) -> None:
                    board[:] = [fraction, message]
                    if progress is not None:
                        progress(fraction, message)

                value = compute(report)                                 # exceptions propagate, nothing stored
                self._store(key, value)
                return value
            finally:
                key_lock.release()
        finally:
            with self._lock:
                self._pending.pop(key, None)
                self._boards.pop(key, None)
