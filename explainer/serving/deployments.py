"""One Ray Serve deployment per model: its replicas hold the weights and do the heavy work.

Imported only by workers and by ``python -m explainer cluster`` (it imports Ray); a front end
reaches these deployments over HTTP (:mod:`explainer.serving.client`) and never imports this.

Inside a replica, three lanes:

- **batch**: short traces. ``@serve.batch`` gathers the requests that arrive together (up to
  :data:`BATCH_TOKENS` padded tokens, at most 32 prompts) and the project's own right-padded
  batching (:func:`explainer.tracing.trace_ids`) runs them as few forward passes as the bounds and
  the memory budget allow.
- **short**: one quick pass (a generation step).
- **long**: long traces and long analyses (input attribution, head statistics of long texts),
  one at a time, on a thread of their own, so a long request never holds up the quick ones; at
  most :data:`LONG_WAITING` wait behind it, and more are answered 503 with ``Retry-After`` at once.

``max_ongoing_requests`` (:data:`MAX_ONGOING`) is above the batch size (Serve's default of 5
would silently cap every batch); ``max_queued_requests`` bounds what waits in front of the
replicas: past it Serve answers 503 with ``Retry-After`` at once instead of queueing without end.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray
from ray import serve
from ray.serve.config import BackpressureConfig
from starlette.requests import Request
from starlette.responses import Response

from explainer.serving.worker import Reply, Worker, error_reply
from explainer.tracing import MAX_BATCH, MAX_BATCH_TOKENS

NAMESPACE = "llm-explainer"
LEDGER = "llm-explainer-ledger"
BATCH_TOKENS = MAX_BATCH_TOKENS              # padded tokens in one gathered batch
BATCH_WAIT_S = 0.01                          # how long the first request of a batch waits for company
MAX_ONGOING = 2 * MAX_BATCH                  # per replica: a whole batch, the next one forming, the long lane
QUEUED_PER_REPLICA = 64                      # requests waiting in front of the replicas, per replica
LONG_WAITING = 32                            # long requests that may wait (in order) behind the running one
LONG_QUEUE_ENV = "LLM_EXPLAINER_LONG_QUEUE"  # (operators may change it)
RETRY_AFTER_S = 5
HEARTBEAT_S = 1.0
SETTINGS = ("LLM_EXPLAINER_MODELS", "LLM_EXPLAINER_CACHE", "LLM_EXPLAINER_MEMORY_GB", "LLM_EXPLAINER_MODEL_GB",
            LONG_QUEUE_ENV, "HF_HUB_OFFLINE", "HF_HOME")


def _padded_tokens(requests: list[dict[str, Any]]) -> int:
    """A batch's size for ``@serve.batch``: padded tokens, each prompt counting at least BATCH_TOKENS / 32."""
    longest = max(len(r.get("token_ids") or ()) for r in requests)
    return len(requests) * max(longest, BATCH_TOKENS // MAX_BATCH)


@ray.remote(num_cpus=0)
class Ledger:
    """Every replica's process id and requests served, as its heartbeats last told them."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def report(self, key: str, row: dict[str, Any]) -> None:
        self.rows[key] = {**row, "seen": time.time()}

    def replicas(self, fresh_s: float) -> list[dict[str, Any]]:
        now = time.time()
        return [row for row in self.rows.values() if now - row["seen"] <= fresh_s]


@serve.deployment(max_ongoing_requests=MAX_ONGOING, health_check_period_s=2, graceful_shutdown_timeout_s=5)
class ModelServer:
    """A replica: one model's weights and the three lanes."""

    def __init__(self, name: str, threads: int, device: str, settings: dict[str, str]) -> None:
        os.environ.update(settings)
        import torch
        torch.set_num_threads(max(1, threads))
        self.worker = Worker.load(name, device=device)
        self.lanes = {"short": ThreadPoolExecutor(1, "short"), "long": ThreadPoolExecutor(1, "long")}
        self.long_waiting = 0
        self.long_queue = int(os.environ.get(LONG_QUEUE_ENV) or LONG_WAITING)
        self.key = ray.get_runtime_context().get_actor_id()
        threading.Thread(target=self._heartbeat, daemon=True).start()

    def _heartbeat(self) -> None:
        ledger = ray.get_actor(LEDGER, namespace=NAMESPACE)
        context = ray.get_runtime_context()
        info = {"node": ray.util.get_node_ip_address(), "node_id": context.get_node_id()}
        while True:
            ledger.report.remote(self.key, {**self.worker.info(), **info})
            time.sleep(HEARTBEAT_S)

    async def __call__(self, http: Request) -> Response:
        if http.method == "GET":                          # readiness and what is served here
            return Response(json.dumps(self.worker.info()), media_type="application/json")
        request = self.worker.read(await http.body())
        if isinstance(request, Reply):
            return _response(request)
        lane = self.worker.lane(request)
        if lane == "batch":
            return _response(await self.traces(request))
        if lane == "long" and self.long_waiting > self.long_queue:
            return _response(_busy(request))
        self.long_waiting += lane == "long"
        try:
            loop = asyncio.get_running_loop()
            return _response(await loop.run_in_executor(self.lanes[lane], self.worker.run, request))
        finally:
            self.long_waiting -= lane == "long"

    @serve.batch(max_batch_size=BATCH_TOKENS, batch_wait_timeout_s=BATCH_WAIT_S, batch_size_fn=_padded_tokens)
    async def traces(self, requests: list[dict[str, Any]]) -> list[Reply]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.lanes["short"], self.worker.traces, requests)


def _response(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


def _busy(request: dict[str, Any]) -> Reply:
    reply = error_reply(RuntimeError("This worker's long lane is full; try again shortly."),
                        request.get("request_id", ""), status=503)
    return Reply(503, reply.body, {**reply.headers, "Retry-After": str(RETRY_AFTER_S)})


def application(name: str, replicas: int, threads: int, cpus: float, gpus: float) -> Any:
    """The Serve application of model ``name``: ``replicas`` replicas, each with its share of the machine."""
    settings = {k: os.environ[k] for k in SETTINGS if k in os.environ}
    return ModelServer.options(
        name=f"model-{name}"[:60], num_replicas=replicas,
        max_queued_requests=QUEUED_PER_REPLICA * replicas,
        backpressure_config=BackpressureConfig(status_code=503, retry_after_s=RETRY_AFTER_S),
        ray_actor_options={"num_cpus": cpus, "num_gpus": gpus},
    ).bind(name, threads, "cuda" if gpus else "cpu", settings)
