"""A cluster stand-in for unit tests: workers behind a plain HTTP server, no Ray, faults on request.

The server routes ``/m/<model>`` to that model's :class:`explainer.serving.worker.Worker`, just as
the Serve application does, and answers ``/-/routes`` like Serve's proxy. ``faults`` is a list of
what the next requests get instead of an answer: ``("lost", n)`` n plain-text 500s (a replica
killed mid-request), ``("busy", seconds)`` one 503 with that Retry-After, ``("drop", n)`` n closed
connections.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from explainer.serving.remote import route
from explainer.serving.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


LLAMA_7B = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
            "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096}


def big_model_folder(folder: Path) -> Path:
    """A folder that names Llama 2 7B's shape in its config, with weights that are not weights: loading
    must refuse it from the config before reading them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(LLAMA_7B))
    (folder / "model.safetensors").write_bytes(b"not weights: reading them would fail differently")
    return folder


class FakeCluster:
    def __init__(self, workers: list[Worker]) -> None:
        self.workers = {"/" + route(w.name): w for w in workers}
        self.faults: list[tuple[str, int]] = []
        self.seen: list[dict] = []              # every request body that reached a worker
        self.attempts = 0
        self.lock = threading.Lock()

    def next_fault(self) -> tuple[str, int] | None:
        with self.lock:
            self.attempts += 1
            if not self.faults:
                return None
            kind, n = self.faults[0]
            if kind == "busy" or n <= 1:
                self.faults.pop(0)
            else:
                self.faults[0] = (kind, n - 1)
            return kind, n


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:        # quiet
            pass

        def do_GET(self) -> None:
            body = json.dumps({prefix: prefix[3:] for prefix in cluster.workers}).encode()
            self._send(200, body, {"Content-Type": "application/json"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fault = cluster.next_fault()
            if fault and fault[0] == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if fault and fault[0] == "lost":
                return self._send(500, b"ActorDiedError: the replica died", {"Content-Type": "text/plain"})
            if fault and fault[0] == "busy":
                return self._send(503, b"busy", {"Retry-After": str(fault[1])})
            worker = cluster.workers.get(self.path.rstrip("/"))
            if worker is None:
                return self._send(404, b"no such route", {"Content-Type": "text/plain"})
            request = worker.read(body)
            if isinstance(request, dict):
                cluster.seen.append(request)
                reply = worker.traces([request])[0] if worker.lane(request) == "batch" else worker.run(request)
            else:
                reply = request
            self._send(reply.status, reply.body, reply.headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    return Handler


@contextlib.contextmanager
def fake_cluster(*workers: Worker) -> Iterator[tuple[str, FakeCluster]]:
    """A running stand-in cluster and its URL; stopped on exit."""
    cluster = FakeCluster(list(workers))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", cluster
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- a real local cluster (integration, e2e)

# The tests' own ports: Serve's, then Ray's and the 48 after it (LLM_EXPLAINER_CLUSTER_PORT=8600: another range).
CLUSTER_PORT = int(os.environ.get("LLM_EXPLAINER_CLUSTER_PORT", "8850"))
CLUSTER_RAY_PORT = CLUSTER_PORT + 1
CLUSTER_TEMP = "/tmp/rt-serving-test"
CLUSTER_MODELS = "smollm2-135m"


def cluster_command(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m explainer cluster ...`` exactly as a user types it (with the tests' temp folder)."""
    import sys
    env = {k: v for k, v in os.environ.items() if k != "LLM_EXPLAINER_BACKEND"}
    env["LLM_EXPLAINER_MODELS"] = CLUSTER_MODELS
    env["LLM_EXPLAINER_LONG_QUEUE"] = "4"                # a short long lane: overload is quick to reach
    return subprocess.run([sys.executable, "-m", "explainer", "cluster", *args, "--temp-dir", CLUSTER_TEMP],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def session_processes() -> list[int]:
    """Process ids of the test cluster's Ray session (explainer.serving.cluster.session_processes)."""
    from explainer.serving.cluster import session_processes as of_session
    return sorted(of_session(str(Path(CLUSTER_TEMP, "session_latest").resolve()), CLUSTER_RAY_PORT))
