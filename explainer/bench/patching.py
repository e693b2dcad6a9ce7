"""Benchmark section 12: activation patching, all four sites of a 12-token pair, on each embedded model.

The pair changes its first word ("The Eiffel Tower … " → "The Colosseum … "), so every later
position is patched: the most work a 12-token pair can ask for (a change near the end costs far
less, since positions before it are never run). Each run starts with nothing remembered; a
second student asking for the same pair afterwards is measured too (it waits for nothing).
"""
from __future__ import annotations

from explainer.analysis import patching
from explainer.analysis.patching_pairs import READY_PAIRS
from explainer.bench.library import Context, device_tag
from explainer.bench.rows import Row, median, timed
from explainer.models import LoadedModel
from explainer.tracing import tokenize

TARGET_S = 15.0
PAIR = READY_PAIRS["en"][1]          # the Eiffel Tower / the Colosseum: 12 tokens on both embedded models


def section_patching(ctx: Context, device: str) -> list[Row]:
    """Seconds for every cell of the four maps, per model (best of the repeats), and a second asker."""
    which = ["default", "multilingual"] if ctx.multilingual else ["default"]
    rows: list[Row] = []
    for name in which:
        rows += _one_model(ctx.model(device, name), device, 1 if ctx.quick else 2)
    return rows


def _one_model(model: LoadedModel, device: str, repeats: int) -> list[Row]:
    n = len(tokenize(model, PAIR.clean)[0])
    cells = model.n_layers * (3 * (n - _first_change(model)) + model.n_heads)
    times = []
    for _ in range(repeats):
        patching.forget(model)
        seconds, maps = timed(lambda: patching.activation_patching(model, PAIR.clean, PAIR.corrupted, "all"))
        times.append(seconds)
    again, _ = timed(lambda: patching.activation_patching(model, PAIR.clean, PAIR.corrupted, "all"))
    tag = device_tag(device, model)
    flip = f"{maps['resid_pre'].answer_label.strip()} → {maps['resid_pre'].contrast_label.strip()}"
    return [Row(12, f"{tag}activation patching, all four sites, {n}-token pair ({flip})", min(times),
                "s", TARGET_S, note=f"{cells:,} patched runs; median {median(times):.1f} s"),
            Row(12, f"{tag}… the same pair asked again (another student)", 1000 * again, "ms")]


def _first_change(model: LoadedModel) -> int:
    a, b = tokenize(model, PAIR.clean)[0], tokenize(model, PAIR.corrupted)[0]
    return next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
