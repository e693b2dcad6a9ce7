"""The benchmark's GPU rows, made on the CPU standing in for a GPU (a tiny model; the code that times a
GPU waits for it, which on the CPU costs nothing): `--device cuda` rows, targets and file name."""
from __future__ import annotations

import argparse

import pytest
import torch

import explainer.models
from explainer import bench, graphs
from explainer.bench import library, room


@pytest.fixture
def stand_in(tiny_llama, monkeypatch):
    """A Context whose "cuda" model is the tiny CPU model, with one short §1 size and graphs allowed."""
    monkeypatch.setattr(library, "CUDA_SIZES", (16,))
    monkeypatch.setattr(library, "_repeats", lambda size, quick: 1)
    monkeypatch.setattr(graphs, "DEVICE_TYPES", ("cuda", "cpu"))
    monkeypatch.setattr(library.Context, "model", lambda self, device, which="default": tiny_llama)
    return library.Context(model_arg=tiny_llama, quick=False, beside_gpu=True)


def test_gpu_rows_hold_the_targets_and_the_graphed_trace(stand_in):
    rows = library.section_ratio(stand_in, "cuda")
    metrics = {r.metric: r for r in rows}
    ratio = next(r for m, r in metrics.items() if m.startswith("[cuda, tiny-llama] trace() ÷ plain sdpa forward, 16"))
    assert ratio.target == library.TARGET_RATIO and ratio.value > 0
    graphed = next(r for m, r in metrics.items() if "replayed as a CUDA graph" in m)
    assert graphed.value > 0 and "logits" in graphed.note and float(graphed.note.split("logits ")[1].split()[0]) < 1e-4
    assert [r.metric for r in library.section_ratio(stand_in, "cpu") if r.target] == \
        ["[tiny-llama] trace() ÷ plain sdpa forward, 64 tokens"]          # beside a GPU: 64 tokens on the CPU


def test_the_crowd_on_a_gpu_has_a_p95_target(stand_in, monkeypatch):
    monkeypatch.setattr(room, "CROWD", 12)
    monkeypatch.setattr(room, "STUDENTS", 4)
    rows = room.section_classroom(stand_in, "cuda")
    p95 = next(r for r in rows if r.metric.endswith("students at once: p95 latency"))
    assert p95.target == room.TARGET_CROWD_P95_CUDA_S and p95.unit == "s"


def test_device_cuda_defaults_to_its_own_report(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "_run_section", lambda section, runner: seen.setdefault(section, []) or [])
    monkeypatch.setattr(explainer.models, "pick_device", lambda device: torch.device("cuda"))
    bench.run_benchmark(argparse.Namespace(quick=True, sections="", out="", device="cuda"))
    assert sorted(seen) == [1, 2, 7, 10] and (tmp_path / "BENCHMARK_CUDA.md").exists()
