"""Benchmark section 13: a lecture hall, in-process and on Ray Serve (one worker, two workers).

Locust's students (``tests/load/locustfile.py``) arrive at once — 30, 100, 300 — and each does one
lesson: open the app, type an own prompt, open *Why this answer?*. They talk to a front end
stand-in (:mod:`explainer.bench.hall`), which runs the library in-process or sends the heavy work
to a cluster started with ``python -m explainer cluster up``. Reported: lessons a second, p50/p95
of the own prompt and of *Why this answer?*, requests lost. On a cluster, the same again with one
replica killed (``kill -9``) two seconds in: requests lost (target 0) and the time until the new
replica answers (with one worker, no replica is left meanwhile). Then overload
(:mod:`explainer.bench.overload`).

Everything runs on this machine: on two cores a second worker shares the same two cores.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

from explainer.bench.rows import Row, percentile
from explainer.paths import REPO_ROOT

SECTION = 13
SIZES, QUICK_SIZES = (30, 100, 300), (30,)
HALL_PORT, CLUSTER_PORT, RAY_PORT = 8810, 8850, 8851
TEMP = "/tmp/rt-bench"
MODEL = "smollm2-135m"
LOCUSTFILE = REPO_ROOT / "tests" / "load" / "locustfile.py"
KILL_AFTER_S = 2.0


def _env(backend: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LLM_EXPLAINER_BACKEND"}
    env.update(PYTHONPATH=str(REPO_ROOT), LLM_EXPLAINER_MODELS=MODEL, LLM_EXPLAINER_RAY_DIR=TEMP)
    if backend:
        env["LLM_EXPLAINER_BACKEND"] = backend
    return env


def cluster_cli(*args: str, timeout: float = 900) -> str:
    """``python -m explainer cluster ...`` (the bench's own ports and temp folder); its stdout."""
    done = subprocess.run([sys.executable, "-m", "explainer", "cluster", *args, "--temp-dir", TEMP],
                          capture_output=True, text=True, timeout=timeout, env=_env(None), cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"cluster {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


@contextlib.contextmanager
def cluster(workers: int) -> Iterator[str | None]:
    """A cluster of ``workers`` replicas (its URL), or None for in-process (0 workers)."""
    if not workers:
        yield None
        return
    out = cluster_cli("up", "--workers", str(workers), "--port", str(CLUSTER_PORT), "--ray-port", str(RAY_PORT))
    try:
        yield out.strip().splitlines()[-1]
    finally:
        cluster_cli("down")


@contextlib.contextmanager
def front_end(backend: str | None) -> Iterator[str]:
    """The front end stand-in, in-process or on ``backend``; its URL once it has the model."""
    proc = subprocess.Popen([sys.executable, "-m", "explainer.bench.hall", "--port", str(HALL_PORT)],
                            env=_env(backend), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        if "ready" not in (proc.stdout.readline() if proc.stdout else ""):
            raise RuntimeError("the front end stand-in did not start")
        yield f"http://127.0.0.1:{HALL_PORT}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


_first_student = [0]


def students(host: str, n: int) -> dict[str, Any]:
    """``n`` students at once (a Locust process of its own: its gevent stays out of this one); no
    two runs share a prompt, so nothing is served from an earlier run's cache."""
    env = dict(_env(None), LOCUST_FIRST_STUDENT=str(_first_student[0]))
    _first_student[0] += n
    done = subprocess.run([sys.executable, str(LOCUSTFILE), "--host", host, "--users", str(n)], capture_output=True,
                          text=True, timeout=3600, env=env, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"locust failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def summary(run: dict[str, Any]) -> dict[str, float]:
    """Lessons a second, p50/p95 of the own prompt and of Why this answer? (s), requests and losses."""
    requests = run["requests"]
    ms = lambda name: [r["ms"] / 1000 for r in requests if r["name"] == name and r["ok"]]  # noqa: E731
    prompt, why = ms("type own prompt"), ms("Why this answer?")
    return {"lessons_per_s": run["users"] / run["seconds"], "seconds": run["seconds"], "requests": len(requests),
            "lost": sum(not r["ok"] for r in requests),
            "prompt_p50": percentile(prompt, 50) if prompt else float("nan"),
            "prompt_p95": percentile(prompt, 95) if prompt else float("nan"),
            "why_p50": percentile(why, 50) if why else float("nan"),
            "why_p95": percentile(why, 95) if why else float("nan")}


def _note(s: dict[str, float]) -> str:
    return (f"{s['lessons_per_s']:.2f} lessons/s ({s['seconds']:.0f} s in all); own prompt p50 {s['prompt_p50']:.2f} s "
            f"p95 {s['prompt_p95']:.2f} s; Why this answer? p50 {s['why_p50']:.2f} s p95 {s['why_p95']:.2f} s; "
            f"{s['lost']:.0f} of {s['requests']:.0f} requests lost")


def watch_recovery(backend: str, since: float, deadline_s: float = 300.0) -> float | None:
    """Seconds from the kill until a replica started after it answers (polled over HTTP), or None."""
    import psutil
    import requests as http
    while time.time() - since < deadline_s:
        try:
            pid = http.get(f"{backend}/m/{MODEL}", timeout=5).json()["pid"]
            if psutil.Process(pid).create_time() >= since - 0.5:
                return time.time() - since
        except (http.RequestException, ValueError, KeyError, psutil.Error):
            pass
        time.sleep(0.2)
    return None


def killed_run(host: str, backend: str, n: int) -> tuple[dict[str, Any], float | None]:
    """``n`` students; a replica killed (SIGKILL) two seconds in; the run and the recovery time."""
    import requests as http
    victim = http.get(f"{backend}/m/{MODEL}", timeout=10).json()["pid"]
    out: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: out.update(students(host, n)))
    runner.start()
    time.sleep(KILL_AFTER_S)
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    recovered = watch_recovery(backend, killed_at)
    runner.join()
    return out, recovered


def section_serving(quick: bool = False) -> list[Row]:
    """§13: the lecture hall (see the module doc), then overload."""
    from explainer.bench import overload
    rows: list[Row] = []
    sizes = QUICK_SIZES if quick else SIZES
    by_mode: dict[str, dict[int, dict[str, float]]] = {}
    for mode, workers in (("in-process", 0), ("1 worker", 1), ("2 workers", 2)):
        with cluster(workers) as backend, front_end(backend) as host:
            students(host, 1)                                            # warm: first request paths
            for n in sizes:
                s = by_mode.setdefault(mode, {})[n] = summary(students(host, n))
                rows.append(Row(SECTION, f"{mode}, {n} students at once: requests lost", s["lost"], "", 0.0,
                                note=_note(s)))
                print(f"[bench]   {rows[-1].metric}: {rows[-1].note}", file=sys.stderr, flush=True)
            if workers:                                                  # the same with a replica killed
                for n in sizes:
                    run, recovery = killed_run(host, backend, n)
                    s = summary(run)
                    rec = f"new replica answering {recovery:.1f} s after the kill" if recovery else "no new replica seen"
                    rows.append(Row(SECTION, f"{mode}, {n} students, one replica killed (kill -9) at 2 s: "
                                             "requests lost", s["lost"], "", 0.0, note=f"{rec}; {_note(s)}"))
                    print(f"[bench]   {rows[-1].metric}: {rows[-1].note}", file=sys.stderr, flush=True)
    rows += _ratios(by_mode, sizes)
    with cluster(1) as backend:
        rows += overload.section_overload(backend, quick, TEMP, RAY_PORT)
    return rows


def _ratios(by_mode: dict[str, dict[int, dict[str, float]]], sizes: tuple[int, ...]) -> list[Row]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    rows = []
    for n in sizes:
        two, one = by_mode["2 workers"][n]["lessons_per_s"], by_mode["1 worker"][n]["lessons_per_s"]
        where = f"{cores} cores: the second worker shares them" if cores < 4 else f"{cores} cores"
        rows.append(Row(SECTION, f"throughput, 2 workers ÷ 1 worker, {n} students", two / one, "×",
                        note=f"{where}; target ≥ 1.8× on ≥ 4 cores"))
    return rows
