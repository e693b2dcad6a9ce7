"""The background trainer: start, pause, resume, reset, and consistent snapshots."""
from __future__ import annotations

import threading
import time

import torch

from explainer.learning import Trainer, TrainingSnapshot
from explainer.learning.threads import _OMP, one_core


def _wait_until(trainer: Trainer, ok, timeout: float = 30.0) -> TrainingSnapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = trainer.snapshot()
        if ok(snap):
            return snap
        time.sleep(0.02)
    raise AssertionError(f"timed out; last snapshot at step {trainer.snapshot().step}")


def _consistent(snap: TrainingSnapshot, eval_every: int) -> None:
    assert len(snap.train_loss) == snap.step
    steps = [c.step for c in snap.checkpoints]
    assert steps == sorted(steps) and steps[0] == 0
    assert all(s % eval_every == 0 or s == snap.max_steps for s in steps)
    assert [s for s, _ in snap.heldout_loss] == steps
    assert snap.attention_after.step == steps[-1]


def test_start_pause_resume_until_finished() -> None:
    trainer = Trainer(language="en", max_steps=40, eval_every=10, n_samples=1)
    first = trainer.snapshot()
    assert first.step == 0 and not first.running and not first.finished
    trainer.start()
    _wait_until(trainer, lambda s: s.step >= 5)
    trainer.pause()
    paused = trainer.snapshot()
    assert not paused.running and not paused.finished
    time.sleep(0.3)
    assert trainer.snapshot().step == paused.step  # no training while paused
    _consistent(paused, 10)
    trainer.resume()
    done = _wait_until(trainer, lambda s: s.finished and not s.running)
    assert trainer.wait(5.0)
    assert done.step == 40 and done.error is None
    _consistent(done, 10)
    assert [c.step for c in done.checkpoints] == [0, 10, 20, 30, 40]
    assert paused.train_loss == done.train_loss[:paused.step]  # snapshots are immutable history


def test_reset_returns_to_an_identical_start() -> None:
    trainer = Trainer(language="en", max_steps=30, eval_every=10, n_samples=1)
    trainer.step(3)
    reference = trainer.snapshot().train_loss
    trainer.start()
    _wait_until(trainer, lambda s: s.step >= 6)
    trainer.reset()
    snap = trainer.snapshot()
    assert snap.step == 0 and snap.train_loss == () and not snap.running
    assert len(snap.checkpoints) == 1
    assert trainer.step(3).train_loss == reference  # same seed, same run


def test_step_stops_at_max_steps_and_snapshots_are_frozen() -> None:
    trainer = Trainer(language="zh", max_steps=4, eval_every=2, n_samples=1)
    snap = trainer.step(10)
    assert snap.step == 4 and snap.finished
    assert [c.step for c in snap.checkpoints] == [0, 2, 4]
    assert len(snap.latest.samples) == 1 and snap.latest.samples[0].prompt == "苹果是"
    try:
        snap.step = 5  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("snapshot should be frozen")


def test_one_core_is_thread_local_and_restored() -> None:
    if _OMP is None:
        return  # no OpenMP runtime: one_core() is a no-op
    before, global_threads = _OMP.omp_get_max_threads(), torch.get_num_threads()
    seen: list[int] = []
    with one_core():
        assert _OMP.omp_get_max_threads() == 1
        other = threading.Thread(target=lambda: seen.extend([_OMP.omp_get_max_threads(), torch.get_num_threads()]))
        other.start()
        other.join()
    assert seen == [global_threads, global_threads]  # other threads still use every core
    assert _OMP.omp_get_max_threads() == before
