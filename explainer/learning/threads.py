"""Run tiny-model training on one core of the calling thread only.

``torch.set_num_threads`` is process-global: calling it would slow every other user of
the app. But OpenMP's thread count is a per-thread setting: ``omp_set_num_threads`` only
changes the parallel regions the *calling* thread starts. The tiny model's matrices are
too small to gain from two cores, and on a busy machine each parallel region waits for
a descheduled partner thread (measured: 50 steps took 43 s instead of 2.5 s with the
machine loaded). So training loops run inside ``one_core()``, which restores the
thread's previous setting on exit.
"""
from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def _openmp() -> ctypes.CDLL | None:
    """The OpenMP runtime torch loaded (libgomp/libiomp), or None (e.g. builds without OpenMP)."""
    try:
        lib = ctypes.CDLL(None)
        lib.omp_set_num_threads, lib.omp_get_max_threads  # noqa: B018 - both must exist
        return lib
    except (OSError, AttributeError):
        return None


_OMP = _openmp()


@contextmanager
def one_core() -> Iterator[None]:
    """Within the block, torch ops started by this thread use one thread; others are unaffected."""
    if _OMP is None:
        yield
        return
    torch.ones(100_000).add_(1)  # large enough to enter ATen's parallel_for: runs its once-per-thread init
    before = _OMP.omp_get_max_threads()
    _OMP.omp_set_num_threads(1)
    try:
        yield
    finally:
        _OMP.omp_set_num_threads(before)
