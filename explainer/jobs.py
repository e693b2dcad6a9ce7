"""Background jobs: the heavy parts of a page, computed behind it, shared, bounded and cancellable.

A page draws what it has at once and hands its slow parts (input attribution, exact head
statistics of a long text, a vocabulary map, an activation-patching sweep, a call to a remote
model server) to the process-wide :func:`runner`. No Streamlit here; the page glue that draws a
progress line and fills the part in is :mod:`explainer.ui.frame.background`.

    from explainer.jobs import Cancelled, runner

    def sweep(progress):                       # progress(fraction, message); raises Cancelled once abandoned
        return activation_patching(model, clean, corrupt, progress=progress)

    status = runner().submit(("patching", model.name, clean, corrupt), sweep, owner=session_id)
    status.state        # "queued" | "running" | "done" | "failed" | "cancelled"
    status.fraction, status.message      # the last progress report
    status.partial      # what the job published so far (ctx.publish), e.g. a quick estimate
    status.result       # when done; status.error when failed
    runner().release(key, owner)         # this owner no longer wants it

The contract, for whoever writes a job:

- **A job is ``fn(progress)``** and returns its result. ``progress(fraction, message)`` reports
  (``fraction`` in [0, 1]) and is also where cancellation happens: once nobody wants the job it
  raises :class:`Cancelled`, so call it often (per batch, per layer, per row of a sweep). The
  ``progress`` it gets is a :class:`JobContext`: ``progress.publish(value)`` hands out a partial
  result (gradient × input before integrated gradients, an estimate before exact statistics, the
  rows of a sweep so far); ``progress.cancelled`` says whether to stop, for code that cannot
  raise from inside a callback (a remote call that streams, a loop of its own).
- **A key names the computation**, not the asker: every session that submits the same key shares
  one job and, once it is done, one stored result (single flight; the last :attr:`JobRunner.keep`
  results are kept, least recently used first out). Keys must be hashable and must include
  everything the result depends on (the model, the text, the method, the steps …).
- **Owners** are whoever waits (a browser session's id). Submitting or polling again keeps an
  owner's interest alive; :meth:`JobRunner.release` drops it at once (the page changed, the text
  changed). A job is cancelled when no owner is left, or when no owner has polled it for
  ``abandon_after`` seconds (a closed tab). A job submitted with ``finish=True`` is only
  abandoned, never cancelled: it runs to its end and its result is stored (a vocabulary map
  that is written to disk for everyone).
- **Bounded**: at most ``workers`` jobs run at once, on threads whose OS priority is lowered
  (Linux ``nice``), so pages keep drawing while they compute; at most ``max_queued`` wait
  (beyond that :meth:`JobRunner.submit` raises :class:`Busy`). A queued job that everyone left
  is dropped without running.
- **Remote calls** (a model served elsewhere) are jobs like any other: call ``progress`` when
  a response streams in or between requests; a blocking call that cannot be interrupted is only
  abandoned, so give it its own timeout.

An exception in a job is stored as its result (``state == "failed"``, ``status.error``), so every
owner sees the same message and the computation is not repeated on every poll.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from explainer.cache import ByteLRU

ACTIVE = ("queued", "running")
WORKERS = int(os.environ.get("LLM_EXPLAINER_JOB_WORKERS", "2"))
# Added to the workers' niceness, so that pages (niceness 0) come first: measured in the README.
NICE = int(os.environ.get("LLM_EXPLAINER_JOB_NICE", "10"))


class Cancelled(Exception):
    """Raised inside a job by its progress callback once nobody wants the job any more."""


class Busy(RuntimeError):
    """Too many jobs are waiting already; try again later."""


@dataclass(frozen=True)
class Status:
    """A snapshot of one job: where it is, its last report, what it published, its outcome."""

    key: Hashable
    state: str                        # "queued" | "running" | "done" | "failed" | "cancelled"
    fraction: float = 0.0
    message: str = ""
    partial: Any = None
    result: Any = None
    error: BaseException | None = None
    waiting_behind: int = 0           # queued: jobs running or queued ahead of it
    seconds: float = 0.0              # running or finished: how long it has run

    @property
    def pending(self) -> bool:
        return self.state in ACTIVE


@dataclass(eq=False)
class _Job:
    key: Hashable
    fn: Callable[["JobContext"], Any]
    finish: bool
    owners: dict = field(default_factory=dict)        # owner → last time it asked
    state: str = "queued"
    fraction: float = 0.0
    message: str = ""
    partial: Any = None
    result: Any = None
    error: BaseException | None = None
    started: float = 0.0
    finished: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    discard: bool = False                              # cancelled, or forgotten while nobody waits: store nothing


class JobContext:
    """What a job's function gets: call it to report progress; it raises :class:`Cancelled` once
    nobody wants the job. ``publish(value)`` hands out a partial result."""

    def __init__(self, runner: "JobRunner", job: _Job) -> None:
        self._runner, self._job = runner, job

    def __call__(self, fraction: float, message: str = "") -> None:
        with self._runner._lock:
            self._job.fraction, self._job.message = min(max(float(fraction), 0.0), 1.0), str(message)
            stop = self._runner._cancel_if_unwanted(self._job)
        if stop:
            raise Cancelled(repr(self._job.key))

    def publish(self, value: Any) -> None:
        with self._runner._lock:
            self._job.partial = value

    @property
    def cancelled(self) -> bool:
        with self._runner._lock:
            return self._runner._cancel_if_unwanted(self._job)


class JobRunner:
    """Runs keyed jobs on a few low-priority threads; shares, stores, cancels (see the module doc)."""

    def __init__(self, workers: int = WORKERS, keep: int = 64, abandon_after: float = 20.0,
                 max_queued: int = 256, nice: int = NICE) -> None:
        self.workers, self.keep, self.abandon_after = max(1, workers), keep, abandon_after
        self.max_queued, self.nice = max_queued, nice
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[_Job] = deque()
        self._active: dict[Hashable, _Job] = {}
        self._results: ByteLRU[_Job] = ByteLRU(keep, size_of=lambda job: 1)    # finished jobs, by key
        self._running: set[_Job] = set()                # on a worker now, wanted or not
        self._threads: list[threading.Thread] = []
        self.started = 0                                # jobs that began to run (tests, benchmark)
        self.cancelled = 0

    # ------------------------------------------------------------------ asking

    def submit(self, key: Hashable, fn: Callable[[JobContext], Any], owner: Hashable = None,
               finish: bool = False) -> Status:
        """The job for ``key``: its stored outcome, the running or queued one (``owner`` joins it),
        or a new one running ``fn``."""
        with self._lock:
            job = self._known(key)
            if job is None:
                if len(self._queue) >= self.max_queued:
                    raise Busy(f"{len(self._queue)} jobs are waiting already; try again in a moment.")
                job = _Job(key, fn, finish)
                self._active[key] = job
                self._queue.append(job)
                self._start_workers()
                self._wake.notify()
            if job.state in ACTIVE:
                job.owners[owner] = time.monotonic()
            return self._status(job)

    def poll(self, key: Hashable, owner: Hashable = None) -> Status | None:
        """The job's status (None if unknown: never submitted, cancelled, or forgotten); keeps
        ``owner``'s interest alive if it waits for it."""
        with self._lock:
            job = self._known(key)
            if job is None:
                return None
            if job.state in ACTIVE and owner in job.owners:
                job.owners[owner] = time.monotonic()
            return self._status(job)

    def release(self, key: Hashable, owner: Hashable = None) -> None:
        """``owner`` no longer wants ``key``; with no owner left the job is cancelled (or, with
        ``finish``, left to finish)."""
        with self._lock:
            job = self._active.get(key)
            if job is not None:
                job.owners.pop(owner, None)
                self._cancel_if_unwanted(job)

    def wait(self, key: Hashable, timeout: float | None = None, owner: Hashable = None) -> Status | None:
        """Block until the job is no longer pending (or ``timeout``), keeping ``owner`` interested."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.poll(key, owner)
            if status is None or not status.pending:
                return status
            step = min(0.25, self.abandon_after / 3)          # poll well within the owner's lease
            left = step if deadline is None else min(step, deadline - time.monotonic())
            if left <= 0:
                return status
            with self._lock:
                job = self._active.get(key)
            if job is not None:
                job.done.wait(left)

    def waiting(self) -> int:
        """How many owners wait for a queued or running job now (each polls its progress line)."""
        with self._lock:
            now = time.monotonic()
            return len({owner for job in self._active.values() for owner, seen in job.owners.items()
                        if now - seen <= self.abandon_after})

    def pending(self) -> list[Hashable]:
        """Keys of the jobs queued or running now."""
        with self._lock:
            return list(self._active)

    def forget(self, predicate: Callable[[Hashable], bool] = lambda key: True) -> None:
        """Drop stored outcomes whose key matches, and those that jobs nobody waits for any more
        would store when they return (tests and benchmarks)."""
        with self._lock:
            for job in self._running:
                if predicate(job.key) and self._active.get(job.key) is not job:
                    job.discard = True
        self._results.drop(predicate)

    def cancel(self, predicate: Callable[[Hashable], bool] = lambda key: True) -> None:
        """Cancel the queued and running jobs whose key matches, whoever waits for them; nothing of
        theirs is stored, even if one returns before its next progress report (tests and benchmarks:
        a job left running by one test must not be joined, nor its result found, by the next)."""
        with self._lock:
            for job in [job for job in {*self._active.values(), *self._running} if predicate(job.key)]:
                job.owners.clear()
                job.finish, job.discard = False, True    # even if it returns before its next report
                self._cancel_if_unwanted(job)

    # ------------------------------------------------------------------ inside

    def _known(self, key: Hashable) -> _Job | None:
        job = self._active.get(key)
        return job if job is not None else self._results.get(key)

    def _cancel_if_unwanted(self, job: _Job) -> bool:
        """Cancel ``job`` if nobody wants it any more; whether it is cancelled (lock held)."""
        if job.state == "cancelled":
            return True
        if job.state not in ACTIVE or job.finish:
            return False
        now = time.monotonic()
        if any(now - seen <= self.abandon_after for seen in job.owners.values()):
            return False
        job.state = "cancelled"
        self.cancelled += 1
        if self._active.get(job.key) is job:
            del self._active[job.key]
        if job in self._queue:
            self._queue.remove(job)
        job.done.set()
        return True

    def _status(self, job: _Job) -> Status:
        behind = 0
        if job.state == "queued":                        # the running ones, then those queued before it
            behind = sum(j.state == "running" for j in self._active.values())
            behind += next((i for i, j in enumerate(self._queue) if j is job), len(self._queue))
        now = time.monotonic()
        seconds = (job.finished or now) - job.started if job.started else 0.0
        return Status(job.key, job.state, job.fraction, job.message, job.partial, job.result, job.error,
                      behind, seconds)

    def _start_workers(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._work, name=f"explainer-job-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        _lower_priority(self.nice)
        while True:
            with self._lock:
                while not self._queue:
                    self._wake.wait()
                job = self._queue.popleft()
                if self._cancel_if_unwanted(job):      # everyone left while it waited
                    continue
                job.state, job.started = "running", time.monotonic()
                self.started += 1
                self._running.add(job)
            self._run(job)

    def _run(self, job: _Job) -> None:
        try:
            result, error, state = job.fn(JobContext(self, job)), None, "done"
        except Cancelled:
            result, error, state = None, None, "cancelled"
        except Exception as err:                       # noqa: BLE001 - stored, shown to every owner
            result, error, state = None, err, "failed"
        with self._lock:
            job.state, job.result, job.error, job.finished = state, result, error, time.monotonic()
            if state != "cancelled" and not job.discard:   # finished, even if abandoned meanwhile: keep it
                job.fraction, job.partial = 1.0, None
                self._results.drop(lambda key: key == job.key)
                self._results.get_or_compute(job.key, lambda: job)
            if self._active.get(job.key) is job:
                del self._active[job.key]
            self._running.discard(job)
            job.fn, job.owners = None, {}                # let go of what the job held (model, text)
        job.done.set()


def _lower_priority(nice: int) -> None:
    """Lower this thread's OS priority (Linux: niceness is per thread); elsewhere do nothing."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(
            os.PRIO_PROCESS, threading.get_native_id()) + nice))
    except OSError:
        pass


_runner: JobRunner | None = None
_runner_lock = threading.Lock()


def runner() -> JobRunner:
    """The process-wide runner every page and session shares."""
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = JobRunner()
        return _runner
