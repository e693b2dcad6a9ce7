"""The background-job runner: single flight, stored results (bounded), cancel, abandon, bounded workers."""
from __future__ import annotations

import os
import threading
import time

import pytest

from explainer.jobs import Busy, Cancelled, JobRunner


def _steps(n: int = 200, pause: float = 0.01, result="done"):
    """A job that reports ``n`` times (cancellation happens there) and returns ``result``."""
    def job(progress):
        for i in range(n):
            time.sleep(pause)
            progress((i + 1) / n, f"{i + 1}/{n}")
        return result
    return job


def test_thirty_askers_share_one_computation():
    runner, calls, gate = JobRunner(workers=2), [], threading.Event()

    def job(progress):
        calls.append(1)
        gate.wait(10)
        return object()

    statuses = []
    threads = [threading.Thread(target=lambda i=i: statuses.append(runner.submit("k", job, owner=i)))
               for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gate.set()
    done = runner.wait("k", 10)
    assert done.state == "done" and len(calls) == 1
    assert all(s.key == "k" and s.state in ("queued", "running") for s in statuses)
    assert runner.submit("k", job, owner=99).result is done.result       # stored: no second computation
    assert len(calls) == 1 and runner.started == 1


def test_results_are_kept_least_recently_used_first_out():
    runner = JobRunner(workers=1, keep=3)
    for key in "abcd":
        runner.submit(key, lambda p, key=key: key.upper())
        assert runner.wait(key, 10).result == key.upper()
    assert runner.poll("a") is None                                      # the oldest fell out
    assert runner.poll("b").result == "B"                               # b is now the most recent
    runner.submit("e", lambda p: "E")
    runner.wait("e", 10)
    assert runner.poll("c") is None and runner.poll("b").result == "B"


def test_release_by_the_last_owner_cancels_and_a_new_ask_starts_again():
    runner = JobRunner(workers=1)
    runner.submit("k", _steps(), owner="alice")
    runner.submit("k", _steps(), owner="bob")
    _until(lambda: runner.poll("k", "alice").fraction > 0)
    runner.release("k", "alice")
    assert runner.poll("k", "bob").state == "running"                   # bob still wants it
    runner.release("k", "bob")
    assert runner.poll("k") is None and runner.cancelled == 1           # gone at once, not waited for
    status = runner.submit("k", _steps(n=3, result="again"), owner="carol")
    assert status.state in ("queued", "running") and status.fraction == 0.0
    assert runner.wait("k", 10, owner="carol").result == "again"


def test_cancel_stops_matching_jobs_whoever_waits_and_leaves_the_rest():
    runner, stopped = JobRunner(workers=2), []

    def job(progress):
        try:
            return _steps(n=1000)(progress)
        except Cancelled:
            stopped.append(1)
            raise
    runner.submit(("patching", 1), job, owner="alice")
    runner.submit(("patching", 2), job, owner="bob", finish=True)       # queued or running, finish or not
    runner.submit(("why", 1), _steps(n=3, result="kept"), owner="carol")
    _until(lambda: runner.poll(("patching", 1), "alice").fraction > 0)
    runner.cancel(lambda key: key[0] == "patching")
    assert runner.poll(("patching", 1)) is None and runner.poll(("patching", 2)) is None
    _until(lambda: len(stopped) >= 1)                                  # the running one stopped at its next report
    assert runner.wait(("why", 1), 10, owner="carol").result == "kept"
    status = runner.submit(("patching", 1), _steps(n=3, result="new"), owner="dave")
    assert runner.wait(("patching", 1), 10, owner="dave").result == "new" and status.fraction == 0.0


def test_a_cancelled_job_that_returns_anyway_leaves_no_result():
    runner, gate = JobRunner(workers=1), threading.Event()
    runner.submit("k", lambda progress: gate.wait(10) and "old", owner="a")    # reports nothing: cannot be stopped
    _until(lambda: runner.poll("k").state == "running")
    runner.cancel()
    gate.set()
    time.sleep(0.2)                                                    # it returns "old" meanwhile
    assert runner.poll("k") is None
    assert runner.wait("k", 10) is None and runner.submit("k", lambda p: "new", owner="b").state in ("queued", "running")
    assert runner.wait("k", 10, owner="b").result == "new"


def test_forget_also_drops_what_a_released_job_returns_later():
    runner, gate = JobRunner(workers=1), threading.Event()
    runner.submit("k", lambda progress: gate.wait(10) and "late", owner="a")   # reports nothing
    _until(lambda: runner.poll("k").state == "running")
    runner.release("k", "a")                                          # nobody waits: cancelled, still running
    runner.forget()
    gate.set()
    time.sleep(0.2)
    assert runner.poll("k") is None                                   # "late" was not stored


def test_a_job_nobody_polls_is_cancelled_cooperatively():
    runner, seen = JobRunner(workers=1, abandon_after=0.2), []

    def job(progress):
        try:
            _steps(n=1000)(progress)
        except Cancelled:
            seen.append(time.monotonic())
            raise
    start = time.monotonic()
    runner.submit("k", job, owner="tab")
    _until(lambda: seen)
    assert 0.2 <= seen[0] - start < 10.0
    assert runner.poll("k") is None and runner.cancelled == 1


def test_polling_keeps_a_job_alive_and_finish_jobs_are_only_abandoned():
    runner = JobRunner(workers=2, abandon_after=1.0)               # a busy machine may pause the waiter
    runner.submit("polled", _steps(n=40), owner="tab")
    assert runner.wait("polled", 10, owner="tab").state == "done"       # waiting polls
    runner.submit("map", _steps(n=40, result="map"), owner="tab", finish=True)
    runner.release("map", "tab")
    assert runner.wait("map", 10).result == "map"                       # nobody left, still finished and stored


def test_at_most_workers_jobs_run_at_once_and_deserted_queued_jobs_never_run():
    runner, running, most, lock = JobRunner(workers=2), [0], [0], threading.Lock()
    ran: list[str] = []

    def job(name):
        def run(progress):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            ran.append(name)
            _steps(n=10)(progress)
            with lock:
                running[0] -= 1
            return name
        return run

    for name in "abcde":
        runner.submit(name, job(name), owner="me")
    assert runner.poll("e", "me").waiting_behind >= 1
    runner.release("e", "me")                                           # left before it started
    for name in "abcd":
        assert runner.wait(name, 10, owner="me").result == name
    assert most[0] == 2 and "e" not in ran and runner.poll("e") is None


def test_failures_are_stored_once_for_everyone():
    runner, calls = JobRunner(workers=1), []

    def job(progress):
        calls.append(1)
        raise ValueError("no such token")
    runner.submit("k", job, owner=1)
    failed = runner.wait("k", 10)
    assert failed.state == "failed" and str(failed.error) == "no such token"
    assert runner.submit("k", job, owner=2).state == "failed" and len(calls) == 1


def test_partial_results_and_progress_are_visible_while_it_runs():
    runner, gate = JobRunner(workers=1), threading.Event()

    def job(progress):
        progress.publish("quick estimate")
        progress(0.5, "half")
        gate.wait(10)
        return "exact"
    runner.submit("k", job, owner="me")
    _until(lambda: runner.poll("k", "me").partial is not None)
    status = runner.poll("k", "me")
    assert (status.partial, status.fraction, status.message, status.state) == ("quick estimate", 0.5, "half", "running")
    gate.set()
    done = runner.wait("k", 10)
    assert done.result == "exact" and done.fraction == 1.0 and done.partial is None


def test_a_full_queue_says_busy():
    runner, gate = JobRunner(workers=1, max_queued=2), threading.Event()
    runner.submit("running", lambda p: gate.wait(10), owner=0)
    _until(lambda: runner.poll("running", 0).state == "running")
    runner.submit("q1", lambda p: 1, owner=0)
    runner.submit("q2", lambda p: 2, owner=0)
    with pytest.raises(Busy):
        runner.submit("q3", lambda p: 3, owner=0)
    gate.set()
    assert runner.wait("q2", 10).result == 2


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="per-thread niceness is a Linux feature")
def test_workers_run_at_a_lower_priority_than_pages():
    runner = JobRunner(workers=1, nice=5)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    runner.submit("k", lambda p: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert runner.wait("k", 10).result == min(19, mine + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine   # the caller is untouched


def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_openmp_threads_sleep_instead_of_spinning_unless_told_otherwise():
    """Spinning OpenMP threads starve pages when jobs share two cores (README, "No page waits")."""
    import subprocess
    import sys

    code = "import explainer, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ACTIVE"


def test_waiting_counts_the_owners_of_pending_jobs_once_each():
    """What spaces the progress lines' polls out: many waiting sessions ask less often each."""
    runner, gate = JobRunner(workers=1, abandon_after=0.3), threading.Event()

    def held(progress):
        while not gate.wait(0.02):
            progress(0.0)
    for owner in range(5):
        runner.submit("a", held, owner=owner)
    runner.submit("b", held, owner=4)                   # one owner waiting for two jobs counts once
    runner.submit("b", held, owner=5)
    assert runner.waiting() == 6
    runner.release("b", 5)
    assert runner.waiting() == 5
    time.sleep(0.4)                                     # nobody polled within the lease: nobody waits
    assert runner.waiting() == 0
    gate.set()
