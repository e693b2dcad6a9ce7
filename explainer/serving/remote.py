"""The switch: with ``LLM_EXPLAINER_BACKEND`` set, heavy work goes to the cluster; unset, it runs here.

A heavy analysis joins the cluster with one line, ``@remotable`` on the function that does the
work. Its first argument is the model (or a trace); the rest must be plain values (numbers, text,
token ids, this library's settings dataclasses and results); callables such as ``progress`` stay
behind (the cluster reports no progress) and hear instead when the cluster is full (a background
job's progress line then says "busy — retrying in N s"). Called with the backend set, the function's arguments travel
(:mod:`explainer.serving.wire`), a worker that holds the same model runs the very same function,
and its result comes back as the same dataclass, its arrays raw. Called without, nothing changes:
the function runs in-process and no Ray or HTTP code is touched.

A trace (the first argument or any other) travels as a :class:`TraceRef` (its token ids and what
was switched off, never its tensors); the worker traces the ids again (its own cache keeps them)
and runs the analysis there.
``random-gpt2`` (4 layers, 128 wide) always stays in-process.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import inspect
import os
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable

from explainer.models import RANDOM_GPT2, LoadedModel
from explainer.trace import Trace

BACKEND_ENV = "LLM_EXPLAINER_BACKEND"
ALWAYS_LOCAL = (RANDOM_GPT2,)
LANES = ("batch", "short", "long")     # how a worker runs it: batched traces, quick steps, long analyses


@dataclass(frozen=True)
class TraceRef:
    """What a worker needs to trace a prompt again: its ids and what was switched off."""

    text: str
    token_ids: tuple[int, ...]
    truncated: bool
    ablate_heads: tuple[tuple[int, int], ...] = ()
    ablate_mlps: tuple[int, ...] = ()

    @classmethod
    def of(cls, trace: Trace) -> "TraceRef":
        return cls(trace.text, tuple(int(i) for i in trace.token_ids.tolist()), trace.truncated,
                   tuple(sorted(trace.ablated_heads)), tuple(sorted(trace.ablated_mlps)))


@dataclass(frozen=True)
class Remote:
    """A registered analysis: the function itself, its lane, and when it stays in-process anyway."""

    fn: Callable[..., Any]
    lane: str
    local_if: Callable[..., bool] | None


_registry: dict[str, Remote] = {}


def backend() -> str | None:
    """The cluster's URL (``LLM_EXPLAINER_BACKEND``), or None: everything in-process."""
    url = os.environ.get(BACKEND_ENV, "").strip().rstrip("/")
    return url or None


def goes_remote(model: LoadedModel) -> bool:
    """Whether work on ``model`` is sent to the cluster."""
    return backend() is not None and model.name not in ALWAYS_LOCAL


def remotable(fn: Callable | None = None, *, lane: str = "long",
              local_if: Callable[..., bool] | None = None) -> Callable:
    """Register ``fn`` (first argument: a model or a trace) as work the cluster can do.

    ``lane``: "long" (minutes of work, queued on its own so it never holds up quick requests)
    or "short" (one forward pass). ``local_if(*args, **kwargs)``: True when a call is cheap enough
    to run in-process anyway (a short text's head statistics).
    """
    if fn is None:
        return lambda f: remotable(f, lane=lane, local_if=local_if)
    if lane not in LANES[1:]:
        raise ValueError(f"lane must be 'short' or 'long', not {lane!r}")
    op = f"{fn.__module__}:{fn.__qualname__}"
    _registry[op] = Remote(fn, lane, local_if)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def call(subject: LoadedModel | Trace, *args: Any, **kwargs: Any) -> Any:
        model = subject.model if isinstance(subject, Trace) else subject
        if not goes_remote(model) or (local_if is not None and local_if(subject, *args, **kwargs)):
            return fn(subject, *args, **kwargs)
        arguments = list(signature.bind(subject, *args, **kwargs).arguments.items())[1:]
        progress = next((v for _, v in arguments if callable(v)), None)
        return request(model, op, progress, subject=_travelling(subject) if isinstance(subject, Trace) else None,
                       arguments={k: _travelling(v) for k, v in arguments})

    call.op = op                                # type: ignore[attr-defined]
    return call


def _travelling(value: Any) -> Any:
    """What an argument becomes on the wire: a trace its reference, a callable (progress) nothing."""
    if isinstance(value, Trace):
        return TraceRef.of(value)
    return None if callable(value) else value


def registered(op: str) -> Remote:
    """The analysis registered as ``op`` ("module:function"), importing its module (ours only)."""
    module, _, name = op.partition(":")
    if module.startswith("explainer.") and re.fullmatch(r"[\w.]+", module) and op not in _registry:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    found = _registry.get(op)
    if found is None:
        from explainer.serving import NotServed
        raise NotServed(f"The cluster has no analysis named '{op[:120]}'.")
    return found


def route(name: str) -> str:
    """The path under the backend where model ``name`` is served."""
    return "m/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def request(model: LoadedModel, op: str, progress: Callable[[float, str], None] | None = None,
            **payload: Any) -> Any:
    """Send ``op`` on ``model`` to the cluster and return what it computed. While the cluster is
    full, ``progress`` (a background job's) hears :func:`busy_message` each second: the job's
    progress line says "busy — retrying in N s", and a job nobody wants stops waiting."""
    from explainer.serving import client        # HTTP only when there is a backend

    url = f"{backend()}/{route(model.name)}"
    heard = contextlib.nullcontext() if progress is None else client.on_busy(
        lambda seconds: progress(0.0, busy_message(seconds)))
    with heard:
        return client.post(url, {"op": op, "model": model.name, "revision": revision(model), **payload})


def busy_message(seconds: int) -> str:
    """The progress message of a request waiting ``seconds`` more on a full cluster ("" once through)."""
    return f"cluster busy: {seconds}" if seconds > 0 else ""


def busy_seconds(message: str) -> int | None:
    """The seconds a :func:`busy_message` says, or None for any other message."""
    found = re.fullmatch(r"cluster busy: (\d+)", message)
    return int(found.group(1)) if found else None


_revisions: "weakref.WeakKeyDictionary[LoadedModel, str]" = weakref.WeakKeyDictionary()
_revisions_lock = threading.Lock()


def revision(model: LoadedModel) -> str:
    """A fingerprint of the weights (every tensor's name, shape and first and last values): the
    front end and the worker must hold the same model for the numbers to agree."""
    with _revisions_lock:
        found = _revisions.get(model)
    if found is None:
        digest = hashlib.sha256(f"{model.arch.family}:{model.vocab_size}".encode())
        for name, p in model.hf_model.named_parameters():
            flat = p.detach().reshape(-1)
            ends = flat[:8].float().cpu().numpy().tobytes() + flat[-8:].float().cpu().numpy().tobytes()
            digest.update(f"{name}{tuple(p.shape)}".encode() + ends)
        found = digest.hexdigest()[:16]
        with _revisions_lock:
            _revisions[model] = found
    return found
