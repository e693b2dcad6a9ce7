"""The traced pass replayed as a CUDA graph: one launch instead of about a thousand. Off by default.

A small model's forward pass on a GPU is bound by kernel launches (SmolLM2 at 1,024 tokens: about
1,300 of them), and a trace adds its captures to every block. With ``LLM_EXPLAINER_CUDA_GRAPHS=1`` a
trace on a CUDA device (nothing switched off, at most 2,048 tokens) is padded on the right to a length
bucket and its batch to a batch bucket, and the whole hooked pass of that shape is captured once as a
CUDA graph writing into static buffers; every later pass of that shape copies its ids in, replays the
graph and copies out what its traces keep (:meth:`explainer.capture.Recorder.snapshot`). A graph's
buffers stay allocated, so shapes are kept to :data:`MAX_PADDED_TOKENS` padded tokens.

Right padding changes no real token's numbers (causal attention: a token never reads what comes
after it); the MLP peaks look only at real tokens (a mask made on the device from the lengths); each
prompt's logits are read at its own last position, as for any batch. Graphs of one model share one
memory pool and at most :data:`MAX_GRAPHS` shapes are kept. A shape whose capture fails is run as
usual from then on (with a warning).

It is off by default because no GPU has measured it yet: keep it only where the benchmark's §1 and
the CUDA tests show it faster and equal.
"""
from __future__ import annotations

import os
import threading
import warnings
import weakref
from collections import OrderedDict
from typing import Callable

import torch

from explainer.capture import Recorder, hooked
from explainer.devices import to_device
from explainer.models import LoadedModel

OPTION = "LLM_EXPLAINER_CUDA_GRAPHS"
LENGTHS = (64, 128, 256, 512, 1024, 2048)    # past 2,048 tokens a pass is bound by arithmetic, not launches
BATCHES = (1, 2, 4, 8, 16, 32)
MAX_GRAPHS = 8                               # shapes kept per model
MAX_PADDED_TOKENS = 4096                     # a graph's static buffers hold batch × length tokens: at most this
DEVICE_TYPES = ("cuda",)                     # where graphs are captured (tests add the CPU, with Eager)
_NOTHING_OFF = (frozenset(), frozenset())


def wanted(model: LoadedModel, lengths: list[int], ablation: tuple[frozenset, frozenset]) -> bool:
    """Whether this pass runs as a replayed graph (the option is on and the shape is one graphs serve)."""
    return (os.environ.get(OPTION, "").strip() == "1" and model.device.type in DEVICE_TYPES
            and not any(ablation) and max(lengths) <= LENGTHS[-1] and len(lengths) <= BATCHES[-1]
            and _bucket(len(lengths), BATCHES) * _bucket(max(lengths), LENGTHS) <= MAX_PADDED_TOKENS)


def run(model: LoadedModel, input_ids: torch.Tensor, lengths: list[int], pad: int) -> Recorder | None:
    """The pass of ``input_ids`` (B, T) on the host, by replay: a Recorder of its own with the B prompts,
    or None when this shape cannot be graphed (then the caller runs the pass as usual)."""
    B, T = input_ids.shape
    shape = (_bucket(B, BATCHES), _bucket(T, LENGTHS))
    graph = _graph(model, shape, pad)
    if graph is None:
        return None
    ids = torch.full(shape, pad, dtype=torch.long)
    ids[:B, :T] = input_ids
    sizes = torch.full((shape[0],), shape[1], dtype=torch.long)
    sizes[:B] = torch.tensor(lengths)
    graph.ids.copy_(to_device(ids, model.device))
    graph.lengths.copy_(to_device(sizes, model.device))
    graph.replay()
    return graph.recorder.snapshot(lengths)


def _bucket(n: int, buckets: tuple[int, ...]) -> int:
    return next(b for b in buckets if b >= n)


class Eager:
    """A stand-in for ``torch.cuda.CUDAGraph`` where there is none (tests): "capture" runs the pass once
    and every replay runs it again, writing into the same buffers as a graph does."""

    def __init__(self, model: LoadedModel) -> None:
        self._fn: Callable[[], None] | None = None

    def capture(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        fn()

    def replay(self) -> None:
        self._fn()


class CudaGraph:
    """One model's passes captured with ``torch.cuda.graph``: warmed up on a side stream first, all
    sharing the model's memory pool; capture errors stay on this thread (others keep running)."""

    _pools: "weakref.WeakKeyDictionary[LoadedModel, object]" = weakref.WeakKeyDictionary()

    def __init__(self, model: LoadedModel) -> None:
        self._pool = self._pools.setdefault(model, torch.cuda.graph_pool_handle())
        self._graph = torch.cuda.CUDAGraph()

    def capture(self, fn: Callable[[], None]) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):                                   # libraries set themselves up before capture
                fn()
        torch.cuda.current_stream().wait_stream(side)
        with torch.cuda.graph(self._graph, pool=self._pool, capture_error_mode="thread_local"):
            fn()

    def replay(self) -> None:
        self._graph.replay()


CAPTURE: dict[str, type] = {"cuda": CudaGraph, "cpu": Eager}


class _Pass:
    """One shape's captured pass: static ids and lengths in, a static Recorder out."""

    def __init__(self, model: LoadedModel, shape: tuple[int, int], pad: int) -> None:
        B, T = shape
        dev = model.device
        self.ids = torch.full(shape, pad, dtype=torch.long, device=dev)
        self.lengths = torch.full((B,), T, dtype=torch.long, device=dev)
        self.recorder = Recorder(model, [T] * B, threading.get_ident())
        positions = torch.arange(T, device=dev)

        def once() -> None:
            self.recorder.valid = positions[None, :] < self.lengths[:, None]          # (B, T) real tokens
            with hooked(model, [T] * B, _NOTHING_OFF, None, self.recorder), torch.inference_mode():
                model.hf_model(input_ids=self.ids, use_cache=False, logits_to_keep=1)

        self._graph = CAPTURE[dev.type](model)
        self._graph.capture(once)
        if not self.recorder.complete():
            raise RuntimeError("A stage of the forward pass was not captured.")

    def replay(self) -> None:
        self._graph.replay()


_graphs: "weakref.WeakKeyDictionary[LoadedModel, OrderedDict[tuple[int, int], _Pass | None]]" = \
    weakref.WeakKeyDictionary()


def _graph(model: LoadedModel, shape: tuple[int, int], pad: int) -> _Pass | None:
    """The captured pass of ``shape`` (capturing it on first use; called under the model's lock)."""
    kept = _graphs.setdefault(model, OrderedDict())
    if shape in kept:
        kept.move_to_end(shape)
        return kept[shape]
    try:
        made: _Pass | None = _Pass(model, shape, pad)
    except Exception as err:                               # noqa: BLE001 - run as usual, say so once
        warnings.warn(f"CUDA graph capture of a {shape[0]} × {shape[1]} pass failed ({type(err).__name__}: "
                      f"{err}); passes of that shape run as usual.", RuntimeWarning, stacklevel=2)
        made = None
    kept[shape] = made
    while len(kept) > MAX_GRAPHS:
        kept.popitem(last=False)
    return made
