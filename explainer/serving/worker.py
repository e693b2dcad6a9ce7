"""What a worker does with a request: one model, its traces, every registered analysis. No Ray here.

A Ray Serve replica (:mod:`explainer.serving.deployments`) holds one :class:`Worker` and feeds it
request bodies; tests feed it the same bodies over a plain HTTP server. Every reply is a
:class:`Reply`: 200 with a safetensors result, or a JSON error with the status that says what
kind of error it is (400 a bad request, 404 a model or analysis not served here, 409 another
revision of the model, 413 over the memory budget, 500 a fault of ours — never retried).
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, replace
from typing import Any

from explainer.budget import TooLarge
from explainer.cache import ByteLRU
from explainer.models import LoadedModel, load_model
from explainer.serving import wire
from explainer.serving import NotServed
from explainer.serving.remote import BACKEND_ENV, TraceRef, registered, revision
from explainer.trace import Trace
from explainer.tracing import trace_ids

LONG_TRACE = 1024                   # traces from this many tokens go to the long lane, never into a batch
TRACE_CACHE_BYTES = 2**30           # traces a worker keeps for analyses that ask for them again
RESULT = {"Content-Type": "application/octet-stream"}
ERROR = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]


class OtherRevision(NotServed):
    """The front end holds other weights under the same model name."""


class Worker:
    """One model and everything a request may ask of it."""

    def __init__(self, model: LoadedModel) -> None:
        os.environ.pop(BACKEND_ENV, None)           # a worker computes; it never forwards to itself
        self.model = model
        self.name = model.name
        self.revision = revision(self.model)
        self.served = 0
        self._count = threading.Lock()
        self._traces: ByteLRU[Trace] = ByteLRU(TRACE_CACHE_BYTES, size_of=Trace.nbytes)

    @classmethod
    def load(cls, name: str, device: str = "auto") -> "Worker":
        return cls(load_model(name, device=device))

    def info(self) -> dict[str, Any]:
        return {"model": self.name, "revision": self.revision, "pid": os.getpid(), "served": self.served,
                "device": str(self.model.device)}

    # ------------------------------------------------------------ reading a request

    def read(self, body: bytes) -> dict[str, Any] | Reply:
        """The request in ``body`` if it is for this worker's model, else the reply that says why not."""
        try:
            request = wire.decode_request(body)
            if request.get("model") != self.name:
                raise NotServed(f"This route serves '{self.name}', not '{str(request.get('model'))[:80]}'.")
            if request.get("revision") != self.revision:
                raise OtherRevision(f"The cluster serves another revision of '{self.name}' ({self.revision}); "
                                "the front end and the workers must load the same weights.")
            return request
        except Exception as err:  # noqa: BLE001 - every refusal becomes a reply
            return error_reply(err, "")

    def lane(self, request: dict[str, Any]) -> str:
        """"batch" (a short trace, gathered with others), "short" (one quick pass) or "long"."""
        if request["op"] == "trace":
            return "batch" if len(request.get("token_ids") or ()) < LONG_TRACE else "long"
        try:
            return registered(request["op"]).lane
        except NotServed:
            return "short"                          # answered at once with 404

    # ------------------------------------------------------------ answering

    def traces(self, requests: list[dict[str, Any]]) -> list[Reply]:
        """Trace requests, gathered into as few padded batches as the bounds allow."""
        asked = [(list(r.get("token_ids") or []), _ablation(r)) for r in requests]
        try:
            traces = trace_ids(self.model, asked)
        except Exception as err:  # noqa: BLE001 - the whole batch failed (not one request)
            traces = [err] * len(requests)
        self._served(len(requests))
        return [error_reply(t, r.get("request_id", "")) if isinstance(t, Exception) else
                ok_reply({"residual": t._residual, "last_logits": t._last_logits, "summary": t._summary},
                         r.get("request_id", "")) for t, r in zip(traces, requests)]

    def run(self, request: dict[str, Any]) -> Reply:
        """One request (a long trace, or an analysis) on the calling thread."""
        if request["op"] == "trace":
            return self.traces([request])[0]
        self._served(1)
        try:
            entry = registered(request["op"])
            ref = request.get("subject")
            subject = self.trace_of(ref) if isinstance(ref, TraceRef) else self.model
            arguments = request.get("arguments") or {}
            if not isinstance(arguments, dict) or not all(isinstance(k, str) for k in arguments):
                raise wire.WireError("An analysis takes its arguments by name.")
            arguments = {k: self.trace_of(v) if isinstance(v, TraceRef) else v for k, v in arguments.items()}
            return ok_reply(entry.fn(subject, **arguments), request.get("request_id", ""))
        except Exception as err:  # noqa: BLE001 - every failure becomes a reply
            return error_reply(err, request.get("request_id", ""))

    def trace_of(self, ref: TraceRef) -> Trace:
        """The trace a reference names, traced here once and kept."""
        ablation = (frozenset(tuple(x) for x in ref.ablate_heads), frozenset(ref.ablate_mlps))
        key = (tuple(ref.token_ids), ablation)

        def compute() -> Trace:
            found = trace_ids(self.model, [(list(ref.token_ids), ablation)], ref.text)[0]
            if isinstance(found, Exception):
                raise found
            return replace(found, truncated=ref.truncated)
        return self._traces.get_or_compute(key, compute)

    def _served(self, n: int) -> None:
        with self._count:
            self.served += n


def _ablation(request: dict[str, Any]) -> tuple[frozenset, frozenset]:
    try:
        heads = frozenset((int(l), int(h)) for l, h in request.get("ablate_heads") or ())
        return heads, frozenset(int(l) for l in request.get("ablate_mlps") or ())
    except (TypeError, ValueError):
        return frozenset({(-1, -1)}), frozenset()          # refused by the trace's own check


def ok_reply(value: Any, request_id: str) -> Reply:
    return Reply(200, wire.encode_result(value, request_id), RESULT)


def error_reply(err: BaseException, request_id: str, status: int | None = None) -> Reply:
    """A JSON error: its class, the classes above it (the client raises the nearest it knows), its
    message and the fields its class names in ``WIRE_FIELDS`` (a page words a refusal by them); the
    status says what kind it is."""
    if status is None:
        status = (413 if isinstance(err, TooLarge) else 409 if isinstance(err, OtherRevision)
                  else 404 if isinstance(err, NotServed) else 400 if isinstance(err, (ValueError, TypeError)) else 500)
    kinds = [c.__name__ for c in type(err).__mro__[1:] if c not in (object, BaseException, Exception)]
    body = {"error": type(err).__name__, "kinds": kinds, "message": str(err)[:2000], "request_id": request_id,
            "fields": wire.pack({n: getattr(err, n) for n in getattr(type(err), "WIRE_FIELDS", ())})}
    return Reply(status, json.dumps(body, ensure_ascii=False).encode("utf-8"), ERROR)
