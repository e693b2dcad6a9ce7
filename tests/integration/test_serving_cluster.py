"""A real local cluster (Ray head, SmolLM2 on two CPU workers): the same numbers as in-process, nothing
lost when a replica is killed mid-run, overload answered at once, and ``cluster down`` ends it all."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

import explainer
from explainer.analysis import attention as att
from explainer.analysis import generation as gen
from explainer.analysis.attribution_inputs import attribute_ids
from explainer.serving import wire
from explainer.serving.remote import revision, route
from tests.serving_helpers import CLUSTER_PORT, cluster_command, session_processes

pytestmark = pytest.mark.integration
BACKEND = "LLM_EXPLAINER_BACKEND"
TEXT = "The capital of France is Paris. The capital of Germany is"


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.nanmax(np.abs(a - b)) / max(np.nanmax(np.abs(b)), 1e-12))


def replicas() -> list[dict]:
    done = cluster_command("status", "--json", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["replicas"]


def test_up_prints_the_url_last_and_status_lists_both_workers(serving_cluster):
    assert serving_cluster == f"http://127.0.0.1:{CLUSTER_PORT}"
    found = replicas()
    assert [sorted(r) for r in found] == [["model", "pid", "served"]] * 2
    assert {r["model"] for r in found} == {"smollm2-135m"} and len({r["pid"] for r in found}) == 2


def test_the_cluster_computes_what_the_process_does(serving_cluster, default_model, monkeypatch):
    model = default_model
    ids = explainer.tokenize(model, TEXT)[0]
    settings = gen.GenerationSettings(greedy=False, temperature=0.9, top_k=40)
    here = explainer.trace(model, TEXT, ablate_heads=[(29, 1)])
    inputs_here = attribute_ids(model, ids, None, "integrated_gradients", 16)
    steps_here = gen.generate(model, TEXT, 3, settings, seed=7)
    monkeypatch.setattr(att, "REMOTE_FROM", 0)                   # this short text's statistics too
    stats_here = att.head_stats.__wrapped__(here)
    monkeypatch.setenv(BACKEND, serving_cluster)
    there = explainer.trace(model, TEXT, ablate_heads=[(29, 1)])
    inputs_there = attribute_ids(model, ids, None, "integrated_gradients", 16)
    steps_there = gen.generate(model, TEXT, 3, settings, seed=7)
    stats_there = att.head_stats(there)
    first = attribute_ids(model, ids, None, "integrated_gradients", None, budget_s=0.0)   # bounded: one round
    more = attribute_ids(model, ids, None, "integrated_gradients", None, budget_s=3.0, refine=first)  # its path sent
    assert first.steps == 32 and (more.steps > first.steps or first.stopped == "complete")
    assert more.path.error_bound <= first.path.error_bound and more.seconds > first.seconds
    assert relative(there.residual, here.residual) <= 1e-5
    assert relative(there.next_token_logits, here.next_token_logits) <= 1e-5
    assert relative(there.logits_at([3]), here.logits_at([3])) <= 1e-5    # recomputed here from the stream
    assert relative(inputs_there.scores, inputs_here.scores) <= 1e-5 and inputs_there.steps == inputs_here.steps
    assert [s.chosen_id for s in steps_there.steps] == [s.chosen_id for s in steps_here.steps]
    assert max(relative(a.top_probs, b.top_probs) for a, b in zip(steps_there.steps, steps_here.steps)) <= 1e-5
    assert all(relative(stats_there.get(n), stats_here.get(n)) <= 1e-5 for n in ("entropy", "previous", "first"))


def test_a_replica_killed_mid_run_loses_nothing(serving_cluster, default_model, monkeypatch):
    monkeypatch.setenv(BACKEND, serving_cluster)
    victim = replicas()[0]["pid"]
    prompts = [f"Student {i} asks why the sky over city number {i} looks blue at noon" for i in range(24)]
    killed = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
    start = time.monotonic()
    killed.start()
    with ThreadPoolExecutor(16) as pool:
        traces = list(pool.map(lambda p: explainer.trace(default_model, p), prompts))   # raises if one is lost
    assert len(traces) == 24 and time.monotonic() - start > 1.0
    monkeypatch.delenv(BACKEND)
    alone = explainer.trace(default_model, prompts[-1])
    assert relative(traces[-1].next_token_logits, alone.next_token_logits) <= 1e-5
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:                               # Serve starts a new replica
        pids = {r["pid"] for r in replicas()}
        if len(pids) == 2 and victim not in pids:
            break
        time.sleep(2)
    assert len(pids) == 2 and victim not in pids


def test_a_long_request_never_holds_up_the_short_ones(serving_cluster, default_model, monkeypatch):
    monkeypatch.setenv(BACKEND, serving_cluster)
    long_ids = explainer.tokenize(default_model, "A long text for the long lane. " * 12)[0]
    finished: dict[str, float] = {}
    start = time.monotonic()

    def attribute(k: int) -> None:
        attribute_ids(default_model, long_ids, None, "integrated_gradients", 64)
        finished[f"long {k}"] = time.monotonic() - start

    longs = [threading.Thread(target=attribute, args=(k,)) for k in range(2)]   # one per worker's long lane
    for thread in longs:
        thread.start()
    time.sleep(2.0)
    for i in range(8):
        explainer.trace(default_model, f"A short question number {i} while the long ones run")
        finished[f"short {i}"] = time.monotonic() - start
    for thread in longs:
        thread.join()
    shorts = [v for k, v in finished.items() if k.startswith("short")]
    assert max(shorts) < min(finished["long 0"], finished["long 1"]), finished


def test_overload_is_answered_at_once_with_retry_after(serving_cluster, default_model):
    model = default_model
    ids = explainer.tokenize(model, "Why is the sky blue? " * 4)[0]
    body = wire.encode_request({"op": attribute_ids.op, "model": model.name, "revision": revision(model),
                                "arguments": {"ids": ids, "target": None, "method": "gradient_x_input", "steps": None}})
    url = f"{serving_cluster}/{route(model.name)}"

    def post(_: int) -> tuple[int, str | None, float]:
        start = time.monotonic()
        reply = requests.post(url, data=body, timeout=600)
        return reply.status_code, reply.headers.get("Retry-After"), time.monotonic() - start

    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(post, range(30)))
    busy = [a for a in answers if a[0] == 503]
    assert {a[0] for a in answers} == {200, 503} and len(busy) >= 12      # each long lane holds 1 + 4 here
    assert all(retry == "5" for _, retry, _ in busy) and max(t for _, _, t in busy) < 5.0


def test_down_ends_every_process_it_started(serving_cluster):
    assert session_processes()
    done = cluster_command("down", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert session_processes() == [] and cluster_command("status", "--json").stdout.strip() == '{"replicas": []}'
