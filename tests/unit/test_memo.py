"""explainer.memo: one result per trace and arguments, computed once under concurrency, gone with the trace."""
from __future__ import annotations

import gc
import threading
import time

import pytest

from explainer import memo


class FakeTrace:
    """Anything weak-referenceable stands in for a Trace."""


class FakeModel:
    pass


def test_per_trace_remembers_per_trace_and_arguments_with_defaults_filled_in():
    calls = []

    @memo.per_trace
    def summary(trace, k: int = 10) -> tuple:
        calls.append(k)
        return ("summary", k, id(trace))

    a, b = FakeTrace(), FakeTrace()
    assert summary(a) is summary(a) is summary(a, 10) is summary(a, k=10)       # one entry for all spellings
    assert summary(a, k=5) != summary(a) and summary(b) != summary(a)
    assert calls == [10, 5, 10]


def test_a_model_argument_is_not_part_of_the_key(monkeypatch):
    import explainer.models as models
    monkeypatch.setattr(models, "LoadedModel", FakeModel)
    calls = []

    @memo.per_trace
    def plan(model, trace) -> int:
        calls.append(model)
        return len(calls)

    trace = FakeTrace()
    assert plan(FakeModel(), trace) == plan(FakeModel(), trace) == 1 and len(calls) == 1


def test_thirty_threads_compute_once():
    calls = []
    trace = FakeTrace()

    def slow() -> str:
        calls.append(1)
        time.sleep(0.05)
        return "done"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(memo.remembered(trace, "k", slow)))
               for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["done"] * 30 and len(calls) == 1


def test_recall_never_computes_and_errors_store_nothing():
    trace = FakeTrace()
    assert memo.recall(trace, "k", "absent") == "absent"
    with pytest.raises(RuntimeError):
        memo.remembered(trace, "k", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert memo.recall(trace, "k") is None
    assert memo.remembered(trace, "k", lambda: 3) == 3 and memo.recall(trace, "k") == 3
    memo.forget(trace)
    assert memo.recall(trace, "k") is None


def test_results_go_with_their_trace():
    trace = FakeTrace()
    memo.remembered(trace, "big", lambda: bytearray(10))
    before = len(memo._store)
    del trace
    gc.collect()
    assert len(memo._store) == before - 1


def test_per_model_remembers_on_the_model_and_goes_with_it(monkeypatch):
    import explainer.models as models
    monkeypatch.setattr(models, "LoadedModel", FakeModel)
    calls = []

    @memo.per_model
    def labels(model, k: int = 3) -> list:
        calls.append(k)
        return [k]

    model = FakeModel()
    assert labels(model) is labels(model, 3) and labels(model, 4) == [4] and calls == [3, 4]
    with pytest.raises(TypeError, match="loaded model"):
        labels("not a model")
    del model
    gc.collect()
    assert not [m for m in memo._store.keys() if isinstance(m, FakeModel)]      # gone with its model
