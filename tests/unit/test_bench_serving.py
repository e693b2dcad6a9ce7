"""Benchmark section 13's arithmetic, on handmade runs (the runs themselves need a cluster and minutes)."""
from __future__ import annotations

import math

from explainer.bench import overload, serving


def _run(users: int, seconds: float, records: list[tuple[str, float, bool]]) -> dict:
    return {"users": users, "seconds": seconds,
            "requests": [{"name": n, "ms": ms, "ok": ok, "error": None if ok else "reset"} for n, ms, ok in records]}


def test_summary_counts_lessons_losses_and_percentiles_of_what_was_answered():
    records = [("open the app", 5.0, True)] * 4 + [("type own prompt", 1000.0 * k, True) for k in (1, 2, 3, 4)]
    records += [("Why this answer?", 10_000.0, True)] * 3 + [("Why this answer?", 1.0, False)]
    s = serving.summary(_run(4, 8.0, records))
    assert s["lessons_per_s"] == 0.5 and s["requests"] == 12 and s["lost"] == 1
    assert s["prompt_p50"] == 2.5 and math.isclose(s["prompt_p95"], 3.85)
    assert s["why_p50"] == s["why_p95"] == 10.0                   # the lost one is not a latency


def test_overload_rows_count_refusals_without_retry_after_and_judge_flat_memory():
    answers = [(200, None, 3.0)] * 4 + [(503, "5", 0.2)] * 5 + [(503, None, 0.1)]
    rows = overload._rows(answers * 2, [10.0, 12.0], [1000.0, 1800.0, 1850.0])
    refusals, memory = rows
    assert refusals.value == 2 and refusals.result == "FAIL" and "12 refused with 503 (10 with Retry-After" in refusals.note
    assert memory.value == 50.0 and memory.result == "pass" and "1000 MB before" in memory.note
    assert overload._rows(answers, [1.0], [0.0, 10.0, 500.0])[1].result == "FAIL"
