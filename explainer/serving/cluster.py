"""``python -m explainer cluster up|status|down``: a local Ray head and one Serve application per model.

``up`` starts a Ray head (its own ports and temp folder, so it never touches another Ray on the
machine), deploys each offered model with ``--workers`` replicas and returns when every route
answers, printing the backend URL last. ``status`` lists the live replicas (model, process id,
requests served). ``down`` shuts Serve down and ends, by process id, exactly the processes of this
head's session (never ``ray stop``, which would end every Ray on the machine). More machines join
with Ray's own ``ray start --address=HEAD:RAY_PORT`` (README, "Serving a lecture hall").
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from explainer.paths import REPO_ROOT

BACKEND_ENV = "LLM_EXPLAINER_BACKEND"     # (explainer.serving.remote's; not imported: no torch for status/down)

DEFAULT_PORT = 8000                # Serve's HTTP port: the backend URL
DEFAULT_RAY_PORT = 6379            # the head's port, which other machines join
DEFAULT_TEMP = os.environ.get("LLM_EXPLAINER_RAY_DIR", "/tmp/llm-explainer-ray")   # short: socket paths ≤ 107 bytes
STATE_FILE = "llm-explainer-cluster.json"
READY_TIMEOUT_S = 600.0
FRESH_S = 5.0                      # a replica whose last heartbeat is older is gone
RESERVED_CPUS = 0.05               # what a replica reserves of Ray's CPUs: placement, not a limit (threads are)


def _state_path(temp_dir: str) -> Path:
    return Path(temp_dir) / STATE_FILE


def read_state(temp_dir: str = DEFAULT_TEMP) -> dict[str, Any] | None:
    """What ``up`` wrote about the running cluster, or None."""
    try:
        return json.loads(_state_path(temp_dir).read_text())
    except (OSError, ValueError):
        return None


def served_models() -> list[str]:
    """The models a cluster serves: ``LLM_EXPLAINER_MODELS``, else both embedded models."""
    from explainer.models import EMBEDDED_NAMES
    from explainer.offer import offered
    return list(offered() or EMBEDDED_NAMES)


def ray_ports(ray_port: int) -> list[str]:
    """``ray start`` options that keep every port of the head next to ``ray_port`` (48 in all)."""
    names = ("ray-client-server-port", "node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port", "dashboard-port")
    ports = [f"--{n}={ray_port + 1 + i}" for i, n in enumerate(names)]
    return ports + [f"--min-worker-port={ray_port + 9}", f"--max-worker-port={ray_port + 48}"]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != BACKEND_ENV}    # a worker never forwards
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def start_head(ray_port: int, temp_dir: str, cpus: int) -> None:
    """``ray start --head`` with this project's ports and temp folder."""
    Path(temp_dir).mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={ray_port}",
               *ray_ports(ray_port), f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats",
               "--object-store-memory=500000000", f"--temp-dir={temp_dir}"]
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"ray start failed:\n{done.stderr[-3000:]}")


def connect(address: str) -> None:
    import ray
    if not ray.is_initialized():
        ray.init(address=address, namespace="llm-explainer", log_to_driver=False, logging_level="ERROR")


def up(workers: int, port: int = DEFAULT_PORT, host: str = "127.0.0.1", ray_port: int = DEFAULT_RAY_PORT,
       temp_dir: str = DEFAULT_TEMP, models: list[str] | None = None, say=print,
       cpus_per_worker: int | None = None) -> str:
    """Start (or resize) the cluster; returns the backend URL once every model answers.

    Each replica computes with ``cpus_per_worker`` threads (default: this machine's cores shared
    by the workers). It reserves only a token share of Ray's CPUs (:data:`RESERVED_CPUS`), so a
    resize always finds room for Serve's rolling update and Serve spreads the replicas over the
    nodes it has; on a GPU cluster each replica reserves its share of the GPUs."""
    import ray
    from ray import serve
    from explainer.serving import deployments as dep
    from explainer.serving.remote import route

    models = models or served_models()
    state = read_state(temp_dir)
    cpus = os.cpu_count() or 1
    if state is not None and _alive(state):
        address = state["ray_address"]
        if state["port"] != port:
            raise ValueError(f"A cluster is already up here on port {state['port']}; run `cluster down` first.")
        say(f"the Ray head at {address} is up: deploying again")
    else:
        say(f"starting a Ray head on port {ray_port} (temp folder {temp_dir})")
        start_head(ray_port, temp_dir, cpus)
        address = f"127.0.0.1:{ray_port}"
    connect(address)
    try:
        ray.get_actor(dep.LEDGER, namespace=dep.NAMESPACE)
    except ValueError:
        dep.Ledger.options(name=dep.LEDGER, namespace=dep.NAMESPACE, lifetime="detached").remote()
    serve.start(http_options={"host": host, "port": port})
    gpus, share = ray.cluster_resources().get("GPU", 0.0), workers * len(models)
    threads = cpus_per_worker or max(1, cpus // workers)
    for name in models:
        say(f"deploying {name}: {workers} replica(s), {threads} thread(s) each{' on GPU' if gpus else ''}")
        app = dep.application(name, workers, threads=threads, cpus=RESERVED_CPUS,
                              gpus=min(1.0, gpus / share) if gpus else 0.0)
        serve.run(app, name=f"explainer-{route(name)[2:]}", route_prefix="/" + route(name))
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    _wait_ready(url, models)
    session = str(Path(temp_dir, "session_latest").resolve())
    _state_path(temp_dir).write_text(json.dumps({"url": url, "ray_address": address, "session_dir": session,
                                                 "port": port, "models": models, "workers": workers}))
    return url


def _wait_ready(url: str, models: list[str]) -> None:
    from explainer.serving.client import ServingError, get_json
    from explainer.serving.remote import route

    deadline = time.monotonic() + READY_TIMEOUT_S
    for name in models:
        while True:
            try:
                if get_json(f"{url}/{route(name)}", timeout=10).get("model") == name:
                    break
            except ServingError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer at {url} within {READY_TIMEOUT_S:.0f} s.")
            time.sleep(0.5)


def _alive(state: dict[str, Any]) -> bool:
    import socket
    host, _, port = state["ray_address"].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def status(temp_dir: str = DEFAULT_TEMP) -> dict[str, Any]:
    """``{"replicas": [{"model", "pid", "served"}, …]}`` (empty when no cluster runs), plus where."""
    state = read_state(temp_dir)
    if state is None or not _alive(state):
        return {"replicas": []}
    import ray
    from explainer.serving import deployments as dep

    connect(state["ray_address"])
    ledger = ray.get_actor(dep.LEDGER, namespace=dep.NAMESPACE)
    rows = ray.get(ledger.replicas.remote(FRESH_S), timeout=30)
    rows.sort(key=lambda r: (r["model"], r["pid"]))
    return {"replicas": [{"model": r["model"], "pid": r["pid"], "served": r["served"]} for r in rows],
            "url": state["url"], "nodes": {r["pid"]: r.get("node_id", "")[:8] for r in rows}}


def down(temp_dir: str = DEFAULT_TEMP, say=print) -> int:
    """End this head's processes by id (Serve, its replicas and Ray's own with them: a request in flight
    is lost, as with any stop); returns how many processes were ended."""
    state = read_state(temp_dir)
    if state is None:
        say("no cluster is running here")
        return 0
    ended = end_session(state["session_dir"], int(state["ray_address"].rpartition(":")[2]))
    _state_path(temp_dir).unlink(missing_ok=True)
    return ended


def session_processes(session_dir: str, ray_port: int) -> dict[int, Any]:
    """The processes of one Ray session: those naming its folder or (Ray's client server) its head's
    port, and all they started; by process id."""
    import psutil

    family: dict[int, Any] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or ())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if session_dir in line or ("ray.util.client.server" in line and f":{ray_port} " in line + " "):
            family.update({p.pid: p for p in [proc, *_children(proc)]})
    family.pop(os.getpid(), None)
    return family


def end_session(session_dir: str, ray_port: int, grace_s: float = 5.0) -> int:
    """End every process of one Ray session (:func:`session_processes`) by id: TERM, then KILL."""
    import psutil

    family = session_processes(session_dir, ray_port)
    for proc in family.values():
        _signal(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(list(family.values()), timeout=grace_s)
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    return len(family)


def _children(proc: Any) -> list[Any]:
    import psutil
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _signal(proc: Any, sig: int) -> None:
    import psutil
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


# ---------------------------------------------------------------- the command line


def add_commands(sub: Any) -> None:
    """``cluster up|status|down`` under ``python -m explainer``."""
    c = sub.add_parser("cluster", help="serve the models on Ray Serve: up, status, down")
    actions = c.add_subparsers(dest="action", required=True)
    u = actions.add_parser("up", help="start a Ray head and the models; prints the backend URL last")
    u.add_argument("--workers", type=int, default=1, help="replicas per model")
    u.add_argument("--port", type=int, default=DEFAULT_PORT, help="the backend's HTTP port")
    u.add_argument("--host", default="127.0.0.1",
                   help="where the backend listens (0.0.0.0 for front ends on other machines; no authentication: "
                        "keep it inside your network)")
    u.add_argument("--ray-port", type=int, default=DEFAULT_RAY_PORT, help="the head's port (other machines join it)")
    u.add_argument("--models", default=None, help="comma-separated (default: LLM_EXPLAINER_MODELS, else both embedded)")
    u.add_argument("--cpus-per-worker", type=int, default=None, help="threads per replica (default: cores / workers)")
    s = actions.add_parser("status", help="the live replicas: model, process id, requests served")
    s.add_argument("--json", action="store_true")
    actions.add_parser("down", help="stop everything cluster up started")
    for p in (u, s, actions.choices["down"]):
        p.add_argument("--temp-dir", default=DEFAULT_TEMP, help="Ray's temp folder (keep it short)")


def run(args: Any) -> int:
    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
    if args.action == "up":
        if args.workers < 1:
            raise ValueError("--workers must be at least 1.")
        models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
        print(up(args.workers, args.port, args.host, args.ray_port, args.temp_dir, models, say, args.cpus_per_worker),
              flush=True)
    elif args.action == "status":
        found = status(args.temp_dir)
        if args.json:
            print(json.dumps({"replicas": found["replicas"]}))
        else:
            for r in found["replicas"]:
                print(f"{r['model']:20s} pid {r['pid']:>7}  served {r['served']:>7}  node {found['nodes'][r['pid']]}")
            print(found.get("url", "no cluster is running here"))
    else:
        say(f"ended {down(args.temp_dir, say)} processes")
    return 0
