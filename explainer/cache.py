"""A byte-bounded, thread-safe LRU cache that computes each key once (single flight).

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
