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

from explainer.bench_rows import Row
from explainer.paths import CACHE_ENV, REPO_ROOT

TARGET_FIRST_LOAD = 35.0
TARGET_CACHED_LOAD = 3.0
TARGET_VOCAB_FIRST = 60.0
TARGET_VOCAB_CACHED = 1.0
TARGET_TRAINING = 30.0

# Child scripts print one JSON line prefixed with this marker.
MARK = "BENCH_RESULT "

_LOAD_SCRIPT = """
import time, json
t0 = time.perf_counter()
from transformers.utils import logging
logging.disable_progress_bar()
import explainer
t1 = time.perf_counter()
explainer.load_model()
t2 = time.perf_counter()
print(MARK + json.dumps({"import": t1 - t0, "load_model": t2 - t1, "total": t2 - t0}))
"""

_VOCAB_SCRIPT = """
import time, json, importlib
from transformers.utils import logging
logging.disable_progress_bar()
import explainer
mod = None
for name in ("explainer.analysis.vocab_map", "explainer.analysis.vocabulary"):
    try:
        mod = importlib.import_module(name)
        if hasattr(mod, "build_vocab_map"):
            break
    except ImportError:
        mod = None
if mod is None or not hasattr(mod, "build_vocab_map"):
    print(MARK + json.dumps({"missing": True}))
    raise SystemExit(0)
model = explainer.load_model()
emb = model.embedding_matrix()
phases = []
t0 = time.perf_counter()
m1 = mod.build_vocab_map(emb, model.cache_key, lambda f, msg: phases.append((round(time.perf_counter() - t0, 2), msg)))
t1 = time.perf_counter()
m2 = mod.build_vocab_map(emb, model.cache_key, None)
t2 = time.perf_counter()
print(MARK + json.dumps({"first": t1 - t0, "cached": t2 - t1, "tokens": int(m1.coords.shape[0]),
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
    """§3: first run (GGUF → safetensors in an empty cache) and cached load, each a fresh process."""
    with tempfile.TemporaryDirectory(prefix="explainer-bench-") as tmp:
        env = {CACHE_ENV: tmp}
        first_wall, first = run_child(_LOAD_SCRIPT, env)
        cached_wall, cached = run_child(_LOAD_SCRIPT, env)
    return [
        Row(3, "first run: process start → default model ready (GGUF conversion)", first_wall, "s",
            TARGET_FIRST_LOAD, note=f"import {first['import']:.1f} s + load_model {first['load_model']:.1f} s"),
        Row(3, "cached: load_model() in a fresh process", cached["load_model"], "s", TARGET_CACHED_LOAD,
            note=f"whole process {cached_wall:.1f} s, import {cached['import']:.1f} s"),
    ]


def section_vocab_map(quick: bool = False) -> list[Row]:
    """§6: build_vocab_map for the default model in an empty cache, then again from the cache."""
    with tempfile.TemporaryDirectory(prefix="explainer-bench-") as tmp:
        models = os.path.join(tmp, "models")
        default = _default_models_dir()
        if default:                       # reuse the converted model; only the map cache is fresh
            os.symlink(default, models)
        _, res = run_child(_VOCAB_SCRIPT, {CACHE_ENV: tmp})
    if res.get("missing"):
        return [Row(6, "vocabulary map", note="skipped: build_vocab_map not available", skipped=True)]
    phases = ", ".join(f"{msg}@{t}s" for t, msg in res.get("phases", [])[:8])
    return [
        Row(6, f"first build, {res['tokens']} tokens ({res['method']}, cold process)", res["first"], "s",
            TARGET_VOCAB_FIRST, note=phases),
        Row(6, "cached load", res["cached"], "s", TARGET_VOCAB_CACHED,
            note="" if res["from_cache"] else "NOT read from the cache"),
    ]


def _default_models_dir() -> str | None:
    from explainer.models import default_model_ready
    from explainer.paths import cache_dir

    return str(cache_dir("models")) if default_model_ready() else None


def section_training(quick: bool = False) -> list[Row]:
    """§9: explainer.learning.time_training(steps=200)."""
    try:
        from explainer.learning import time_training
    except ImportError:
        return [Row(9, "tiny-model training, 200 steps", note="skipped: learning not available", skipped=True)]
    steps = 20 if quick else 200
    seconds = time_training(steps=steps)
    return [Row(9, f"tiny-model training, {steps} steps", seconds, "s", None if quick else TARGET_TRAINING)]
