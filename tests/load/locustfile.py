"""A lecture hall in Locust: simulated students open the app, type their own prompt, open *Why this answer?*.

They talk to a front end stand-in (``python -m explainer.bench.hall``), which does what the pages
do, in-process or on a cluster (``LLM_EXPLAINER_BACKEND``). Interactive, with Locust's own page::

    .venv/bin/python -m explainer.bench.hall --port 8810 &
    .venv/bin/locust -f tests/load/locustfile.py --host http://127.0.0.1:8810

Each student reads for 3–8 s between lessons. ``python tests/load/locustfile.py --host URL --users N``
instead lets N students arrive at once and do one lesson each, then prints every request's
latency as JSON (what ``python -m explainer bench --sections 13`` runs).
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time

from locust import HttpUser, between, events, task
from locust.exception import StopUser

TIMEOUT_S = 1800                       # a student waits; the cluster answers 503 + Retry-After, never a silent drop
SENTENCES = ("The capital of France is Paris. The capital of {} is", "My friend {} says the opposite of hot is",
             "When Mary and {} went to the store, Mary gave a drink to", "The Eiffel Tower stands in the city of",
             "Two plus {} apples make", "The first month of the year in {} is")
NAMES = ("Germany", "Italy", "Spain", "Japan", "Kenya", "Peru", "Chile", "Norway", "Egypt", "Brazil")
_students = itertools.count(int(os.environ.get("LOCUST_FIRST_STUDENT", "0")))   # runs never share prompts
ONCE = os.environ.get("LOCUST_ONE_LESSON") == "1"


def own_prompt(i: int) -> str:
    """Student ``i``'s own prompt: different from every other student's."""
    return f"Student {i}: " + SENTENCES[i % len(SENTENCES)].format(NAMES[(i // len(SENTENCES)) % len(NAMES)])


class Student(HttpUser):
    wait_time = between(3, 8)

    @task
    def lesson(self) -> None:
        text = own_prompt(next(_students))
        self.client.get("/open", name="open the app", timeout=TIMEOUT_S)
        self.client.post("/prompt", data=text.encode(), name="type own prompt", timeout=TIMEOUT_S)
        self.client.post("/why", data=text.encode(), name="Why this answer?", timeout=TIMEOUT_S)
        if ONCE:
            raise StopUser()


def run_once(host: str, users: int) -> dict:
    """``users`` students at once, one lesson each; every request's latency and outcome."""
    from locust.env import Environment

    records: list[dict] = []

    @events.request.add_listener
    def record(request_type, name, response_time, response_length, exception=None, **kwargs) -> None:
        records.append({"name": name, "ms": response_time, "ok": exception is None,
                        "error": None if exception is None else str(exception)[:200], "end": time.time()})

    env = Environment(user_classes=[Student], host=host, events=events)
    runner = env.create_local_runner()
    start = time.time()
    runner.start(users, spawn_rate=users)
    time.sleep(1.0)
    while runner.user_count > 0:
        time.sleep(0.2)
    runner.quit()
    return {"users": users, "start": start, "seconds": time.time() - start, "requests": records}


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--users", type=int, required=True)
    args = parser.parse_args()
    ONCE = True
    json.dump(run_once(args.host, args.users), sys.stdout)
