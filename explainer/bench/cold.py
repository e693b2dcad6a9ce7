"""Benchmark sections that start cold: 3 (model ready), 6 (vocabulary map), 9 (tiny-model training).

Cold measurements run in a child Python process with a fresh ``LLM_EXPLAINER_CACHE``, so
neither imports nor on-disk caches from this process help them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from explainer.bench.rows import Row
from explainer.paths import CACHE_ENV, REPO_ROOT, cache_dir

TARGET_FIRST_LOAD = {"smollm2-135m": 35.0, "gemma-3-270m": 60.0}
TARGET_CACHED_LOAD = 3.0
TARGET_VOCAB_FIRST = {"smollm2-135m": 60.0, "gemma-3-270m": 120.0}
TARGET_VOCAB_CACHED = 1.0
MODELS = ("smollm2-135m", "gemma-3-270m")
TARGET_TRAINING = 30.0

# Child scripts print one JSON line prefixed with this marker.
MARK = "BENCH_RESULT "

_LOAD_SCRIPT = """
import time, json, os
t0 = time.perf_counter()
from transformers.utils import logging
logging.disable_progress_bar()
import explainer
t1 = time.perf_counter()
explainer.load_model(os.environ["BENCH_MODEL"])
t2 = time.perf_counter()
print(MARK + json.dumps({"import": t1 - t0, "load_model": t2 - t1, "total": t2 - t0}))
"""

_VOCAB_SCRIPT = """
import time, json, os
from transformers.utils import logging
logging.disable_progress_bar()
import explainer
from explainer.analysis import vocab_map as mod
from explainer.tokens import vocabulary_labels
model = explainer.load_model(os.environ["BENCH_MODEL"])
emb = model.embedding_matrix()
ordinary = mod.ordinary_tokens(vocabulary_labels(model))
phases = []
t0 = time.perf_counter()
m1 = mod.build_vocab_map(emb, model.cache_key, lambda f, msg: phases.append((round(time.perf_counter() - t0, 2), msg)),
                         ordinary)
t1 = time.perf_counter()
m2 = mod.build_vocab_map(emb, model.cache_key, None, ordinary)
t2 = time.perf_counter()
print(MARK + json.dumps({"first": t1 - t0, "cached": t2 - t1, "tokens": int(m1.coords.shape[0]),
                         "laid_out": int(m1.laid_out.sum()) if m1.laid_out is not None else int(m1.coords.shape[0]),
                         "method": getattr(m1, "method", "?"), "from_cache": bool(getattr(m2, "from_cache", True)),
                         "phases": phases}))
"""


def run_child(script: str, env: dict[str, str] | None = None, timeout: float = 900) -> tuple[float, dict]:
    """Run ``script`` in a fresh interpreter; returns (wall seconds, its JSON result)."""
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO_ROOT) + os.pathsep
                + os.environ.get("PYTHONPATH", "")}
    code = f"MARK = {MARK!r}\n" + script
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, cwd=str(REPO_ROOT),
                          capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return wall, json.loads(line[len(MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"child exited {proc.returncode}: {' / '.join(tail)[:300]}")


def section_model_ready(quick: bool = False) -> list[Row]:
    """§3: first run (GGUF → safetensors in an empty cache) and cached load, each a fresh process,
    for both embedded models."""
    rows: list[Row] = []
    for name in MODELS[:1] if quick else MODELS:
        with tempfile.TemporaryDirectory(prefix="explainer-bench-") as tmp:
            env = {CACHE_ENV: tmp, "BENCH_MODEL": name}
            first_wall, first = run_child(_LOAD_SCRIPT, env)
            cached_wall, cached = run_child(_LOAD_SCRIPT, env)
        rows += [
            Row(3, f"[{name}] first run: process start → model ready (GGUF conversion)", first_wall, "s",
                TARGET_FIRST_LOAD[name], note=f"import {first['import']:.1f} s + load_model {first['load_model']:.1f} s"),
            Row(3, f"[{name}] cached: load_model() in a fresh process", cached["load_model"], "s", TARGET_CACHED_LOAD,
                note=f"whole process {cached_wall:.1f} s, import {cached['import']:.1f} s"),
        ]
    return rows


def section_vocab_map(quick: bool = False) -> list[Row]:
    """§6: build_vocab_map for each embedded model in an empty map cache, then again from the cache."""
    rows: list[Row] = []
    for name in MODELS[:1] if quick else MODELS:
        with tempfile.TemporaryDirectory(prefix="explainer-bench-") as tmp:
            os.symlink(str(cache_dir("models")), os.path.join(tmp, "models"))   # reuse converted models only
            _, res = run_child(_VOCAB_SCRIPT, {CACHE_ENV: tmp, "BENCH_MODEL": name})
        phases = ", ".join(f"{msg}@{t}s" for t, msg in res.get("phases", [])[:8])
        rows += [
            Row(6, f"[{name}] first build, {res['tokens']:,} tokens ({res['laid_out']:,} laid out, {res['method']}, "
                "cold process)", res["first"], "s", TARGET_VOCAB_FIRST[name], note=phases),
            Row(6, f"[{name}] cached load", res["cached"], "s", TARGET_VOCAB_CACHED,
                note="" if res["from_cache"] else "NOT read from the cache"),
        ]
    return rows


def section_training(quick: bool = False) -> list[Row]:
    """§9: explainer.learning.time_training(steps=200)."""
    try:
        from explainer.learning import time_training
    except ImportError:
        return [Row(9, "tiny-model training, 200 steps", note="skipped: learning not available", skipped=True)]
    steps = 20 if quick else 200
    seconds = time_training(steps=steps)
    return [Row(9, f"tiny-model training, {steps} steps", seconds, "s", None if quick else TARGET_TRAINING)]
