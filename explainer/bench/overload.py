"""Benchmark section 13, overload: far more requests at once than one worker holds.

Raw requests, no retries (so every refusal is counted): short traces (the batch lane, bounded by
Serve's ``max_ongoing_requests`` and ``max_queued_requests``) and input attributions (the long
lane, bounded by its own queue). Reported: how many were answered 503, whether each 503 carried
``Retry-After`` and how fast it came, and the memory of every process of the cluster (it must stay
flat: nothing queues without end).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from explainer.bench.rows import Row, percentile

SECTION = 13
BURST, QUICK_BURST = 600, 200                 # trace requests; a third as many attributions


def _memory(temp: str, ray_port: int) -> float:
    """MB resident in every process of the bench cluster's session."""
    from explainer.serving.cluster import session_processes
    total = 0
    for proc in session_processes(str(Path(temp, "session_latest").resolve()), ray_port).values():
        try:
            total += proc.memory_info().rss
        except Exception:  # noqa: BLE001 - a process that just ended
            continue
    return total / 2**20


def _burst(backend: str, bodies: list[bytes]) -> list[tuple[int, str | None, float]]:
    import requests as http

    def post(body: bytes) -> tuple[int, str | None, float]:
        start = time.monotonic()
        try:
            reply = http.post(f"{backend}/m/smollm2-135m", data=body, timeout=900)
            return reply.status_code, reply.headers.get("Retry-After"), time.monotonic() - start
        except http.RequestException:
            return 0, None, time.monotonic() - start
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _bodies(n: int) -> list[bytes]:
    import explainer
    from explainer.analysis.attribution_inputs import attribute_ids
    from explainer.serving import wire
    from explainer.serving.remote import revision

    model = explainer.load_model("smollm2-135m")
    head = {"model": model.name, "revision": revision(model)}
    out = []
    for i in range(n):
        ids = explainer.tokenize(model, f"Request {i} of the burst: " + "the sky is blue, " * 12)[0]
        out.append(wire.encode_request({**head, "op": "trace", "token_ids": ids}))
        if i % 3 == 0:
            args = {"ids": ids, "target": None, "method": "gradient_x_input", "steps": None}
            out.append(wire.encode_request({**head, "op": attribute_ids.op, "arguments": args}))
    return out


def section_overload(backend: str, quick: bool, temp: str, ray_port: int) -> list[Row]:
    """The burst, twice, on the cluster at ``backend`` (its Ray session in ``temp``, head on ``ray_port``).

    The first burst fills every bound once (its memory stays with the processes' allocators);
    the second, identical, must find the memory where the first left it: flat, not growing with
    the requests."""
    bodies = _bodies(QUICK_BURST if quick else BURST)
    memory = [_memory(temp, ray_port)]
    answers: list[tuple[int, Any, float]] = []
    seconds = []
    for _ in range(2):
        start = time.monotonic()
        answers += _burst(backend, bodies)
        seconds.append(time.monotonic() - start)
        time.sleep(5.0)
        memory.append(_memory(temp, ray_port))
    return _rows(answers, seconds, memory)


def _rows(answers: list[tuple[int, Any, float]], seconds: list[float], memory: list[float]) -> list[Row]:
    busy = [a for a in answers if a[0] == 503]
    other = sorted({a[0] for a in answers} - {200, 503})
    with_header = sum(a[1] is not None for a in busy)
    p95 = percentile([a[2] for a in busy], 95) if busy else float("nan")
    note = (f"{len(answers) // 2} requests at once on one worker, twice: {sum(a[0] == 200 for a in answers)} answered, "
            f"{len(busy)} refused with 503 ({with_header} with Retry-After, p95 {p95:.2f} s to the refusal)"
            + (f", other statuses {other}" if other else "") + f"; each burst done in {max(seconds):.0f} s")
    before, first, second = memory
    return [Row(SECTION, "overload: refusals without Retry-After", float(len(busy) - with_header), "", 0.0, note=note),
            Row(SECTION, "overload: cluster memory growth in a second identical burst", second - first, "MB", 100.0,
                note=f"every process of the cluster: {before:.0f} MB before, {first:.0f} MB after the first burst "
                     f"(the bounds filled once), {second:.0f} MB after the second")]
