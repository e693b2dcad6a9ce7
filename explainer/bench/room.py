"""Benchmark sections 7 (a room at once) and 10 (whole documents, on demand).

§7: thirty students with different 64-token prompts press *run* at the same moment; their
traces share padded batches, so the room finishes sooner than the same thirty one after
another, and every result equals its prompt traced alone. Then 300 students at once.
§10: an 8,192-token trace, and what a page asks of it afterwards — one head's 64-row window,
and the whole-model summaries (head statistics, MLP overview, the logit lens at the end).
"""
from __future__ import annotations

import threading
from typing import Any

import explainer
from explainer.analysis.attention import head_stats
from explainer.analysis.mlp import mlp_overview
from explainer.analysis.residual import lens_readout
from explainer.bench.rows import Row, percentile, timed
from explainer.bench.library import CUDA_MULTILINGUAL_SIZES, LONGEST, Context, device_tag, document, long_text
from explainer.bench.library import traced
from explainer.devices import host

STUDENTS = 30
CROWD = 300
CLASSROOM_TOKENS = 64
TARGET_ROOM_RATIO = 0.7
TARGET_WINDOW_S = 0.5
TARGET_SUMMARIES_S = 15.0
TARGET_CROWD_P95_CUDA_S = 1.5        # 300 students at once on one H200-class GPU


def answered(model, prompt: str, size: int) -> Any:
    """A student's trace until its answer is on the host (on a GPU, what the page waits for)."""
    tr = explainer.trace(model, prompt, max_tokens=size)
    host(tr.next_token_logits)
    return tr


def _at_once(model, prompts: list[str], size: int) -> tuple[float, list[float], list[Any]]:
    """Trace ``prompts`` from one thread each, all released together: (wall, latencies, traces)."""
    start_line = threading.Barrier(len(prompts))
    latency: list[float] = [0.0] * len(prompts)
    traces: list[Any] = [None] * len(prompts)
    errors: list[BaseException] = []

    def student(i: int) -> None:
        try:
            start_line.wait()
            latency[i], traces[i] = timed(lambda: answered(model, prompts[i], size))
        except BaseException as err:  # noqa: BLE001 - reported in the table
            errors.append(err)

    threads = [threading.Thread(target=student, args=(i,)) for i in range(len(prompts))]
    wall, _ = timed(lambda: [t.start() for t in threads] + [t.join() for t in threads])
    if errors:
        raise errors[0]
    return wall, latency, traces


def relative(a, b) -> float:
    """Largest difference relative to the largest value."""
    return float((a - b).abs().max() / b.abs().max())


def _same(a: Any, b: Any, tol: float = 1e-4) -> bool:
    """A trace made in a batch holds what its prompt traced alone holds (≤ ``tol`` relative)."""
    return bool((a.token_ids == b.token_ids).all()) and relative(a.next_token_logits, b.next_token_logits) <= tol \
        and all(relative(a.stream(l), b.stream(l)) <= tol for l in range(a.n_layers + 1))


def section_classroom(ctx: Context, device: str) -> list[Row]:
    """§7: 30 different prompts at once vs one after another; then a crowd of 300."""
    model = ctx.model(device)
    tag = device_tag(device, model)
    students = 6 if ctx.quick else STUDENTS
    size = min(CLASSROOM_TOKENS, model.context_length)
    prompts = [long_text(i, sentences=40) for i in range(students)]
    answered(model, prompts[0], size)                                    # warm-up
    one_by_one, alone = timed(lambda: [answered(model, p, size) for p in prompts])
    wall, latency, traces = _at_once(model, prompts, size)
    exact = sum(_same(a, b) for a, b in zip(traces, alone))
    rows = [
        Row(7, f"{tag}{students} different {size}-token prompts at once ÷ the same one after another",
            wall / one_by_one, "×", None if ctx.quick else TARGET_ROOM_RATIO,
            note=f"{wall:.2f} s vs {one_by_one:.2f} s"),
        Row(7, f"{tag}p50 / p95 latency of the {students}", percentile(latency, 95), "s",
            note=f"p50 {percentile(latency, 50):.2f} s"),
        Row(7, f"{tag}results that differ from the prompt traced alone (> 1e-4 relative)",
            float(students - exact), "", 0.0, note=f"{exact}/{students} equal"),
    ]
    crowd = 12 if ctx.quick else CROWD
    many = [long_text(1000 + i, sentences=40) for i in range(crowd)]
    wall, latency, _ = _at_once(model, many, size)
    rows.append(Row(7, f"{tag}{crowd} students at once: throughput", crowd / wall, "traces/s",
                    note=f"p95 latency {percentile(latency, 95):.1f} s, all done in {wall:.1f} s"))
    if device == "cuda":
        rows.append(Row(7, f"{tag}{crowd} students at once: p95 latency", percentile(latency, 95), "s",
                        None if ctx.quick else TARGET_CROWD_P95_CUDA_S, note=f"p50 {percentile(latency, 50):.2f} s"))
    return rows


def section_documents(ctx: Context, device: str) -> list[Row]:
    """§10: an 8,192-token document traced, then a window and the whole-model summaries on demand."""
    rows = _document(ctx, device, "default", LONGEST)
    if ctx.multilingual:
        rows += _document(ctx, device, "multilingual", LONGEST)
        if device == "cuda" and not ctx.quick:                           # Gemma 3's whole context
            rows += _document(ctx, device, "multilingual", CUDA_MULTILINGUAL_SIZES[-1])
    return rows


def _document(ctx: Context, device: str, which: str, size: int) -> list[Row]:
    model = ctx.model(device, which)
    tag = device_tag(device, model)
    size = min(64 if ctx.quick else size, model.context_length)
    text = document(3) if size <= LONGEST else long_text(3, sentences=size // 8)
    seconds, tr = timed(lambda: traced(model, text, size))
    last = model.n_layers - 1
    rows_64 = range(max(0, tr.n_tokens - 64), tr.n_tokens)
    window, _ = timed(lambda: host(tr.attention(last, rows=rows_64, heads=[0])))
    summaries, _ = timed(lambda: (head_stats(tr, sample=True), mlp_overview(tr), lens_readout(model, tr, tr.n_tokens - 12)))
    exact, _ = timed(lambda: head_stats(tr))
    check = max(tr.block_check(layer) / float(tr.stream(layer + 1).abs().max()) for layer in (0, last))
    return [
        Row(10, f"{tag}trace of a {tr.n_tokens}-token document", seconds, "s"),
        Row(10, f"{tag}one head's 64-row attention window, last layer, {tr.n_tokens} tokens", window, "s",
            None if ctx.quick else TARGET_WINDOW_S),
        Row(10, f"{tag}whole-model summaries, first view (head statistics from 1,024 evenly spread exact rows, "
            f"flagged; MLP overview; logit lens), {tr.n_tokens} tokens", summaries, "s",
            None if ctx.quick else TARGET_SUMMARIES_S),
        Row(10, f"{tag}exact head statistics over every row (replace the first view when ready), {tr.n_tokens} tokens",
            exact, "s"),
        Row(10, f"{tag}recomputed block output vs the stored next residual (relative)", check, "",
            note="first and last block"),
    ]
