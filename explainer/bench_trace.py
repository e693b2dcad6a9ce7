"""Benchmark sections on the library itself: 1 (trace vs plain forward), 2 (memory), 7 (classroom)."""
from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

import explainer
from explainer.bench_rows import Row, median, percentile, timed
from explainer.models import LoadedModel
from explainer.tracing import tokenize

SIZES = (64, 256, 1024)
QUICK_SIZES = (16, 64)
TARGET_RATIO = {64: 1.10, 256: 1.10, 1024: 1.25}
TARGET_TRACE_MB = 600.0
TARGET_CLASSROOM_P95 = 10.0
STUDENTS = 30
CLASSROOM_TOKENS = 64

_SENTENCES = (
    "The capital of France is Paris, and the capital of Germany is Berlin.",
    "A language model reads text as tokens and predicts the next one.",
    "Every layer adds what it computed to the residual stream.",
    "Attention lets each position look back at the words before it.",
    "In the morning the baker opened the shop and sold fresh bread to the neighbours.",
    "Mathematics is the language in which the universe is written, said Galileo.",
    "The river wound through the valley, past old mills and quiet villages.",
    "Students in the classroom typed their own sentences and watched the predictions change.",
    "Seven hungry cats chased three confused mice around the kitchen table.",
    "When the train finally arrived, the platform was crowded with travellers and their luggage.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.",
    "She wrote the letter twice, because the first draft said too much and the second too little.",
)


def long_text(variant: int = 0, sentences: int = 400) -> str:
    """Plain English prose, long enough for 1024+ tokens; ``variant`` gives a different text."""
    n = len(_SENTENCES)
    parts = [f"Note {variant}:"] + [_SENTENCES[(variant + 5 * k + k // n) % n] for k in range(sentences)]
    return " ".join(parts)


@dataclass
class Context:
    """Models shared by the sections of one run, loaded once per device."""

    model_arg: Any = None            # None (embedded default), a model name, or a LoadedModel
    quick: bool = False
    _models: dict[str, LoadedModel] = field(default_factory=dict)

    def model(self, device: str) -> LoadedModel:
        if device not in self._models:
            arg = self.model_arg
            if isinstance(arg, LoadedModel):
                self._models[device] = arg if arg.device.type == device else explainer.wrap(
                    arg.hf_model, arg.tokenizer, arg.name, device)
            else:
                self._models[device] = explainer.load_model(arg, device=device)
        return self._models[device]

    def sizes(self, device: str) -> list[int]:
        limit = self.model(device).context_length
        return sorted({min(s, limit) for s in (QUICK_SIZES if self.quick else SIZES)})


def _sync(model: LoadedModel) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def plain_forward(model: LoadedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """The baseline: the same HF model (eager attention), no cache, inference mode, no hooks."""
    with torch.inference_mode():
        out = model.hf_model(input_ids=input_ids, use_cache=False)
    _sync(model)
    return out.logits


def _repeats(size: int, quick: bool) -> int:
    if quick:
        return 2
    return 9 if size <= 64 else 5 if size <= 256 else 3


def section_ratio(ctx: Context, device: str) -> list[Row]:
    """§1: trace() ÷ plain forward at each size, interleaved, medians; also without tokenization."""
    model, tag = ctx.model(device), _tag(device)
    text = long_text()
    rows: list[Row] = []
    for size in ctx.sizes(device):
        ids, _ = tokenize(model, text, size)
        x = torch.tensor([ids], device=model.device)                     # (1, T)
        plain_forward(model, x)                                          # warm-up, both sides
        explainer.trace(model, text, max_tokens=size)
        plain, traced, tok = [], [], []
        for _ in range(_repeats(size, ctx.quick)):
            plain.append(timed(lambda: plain_forward(model, x))[0])
            traced.append(timed(lambda: explainer.trace(model, text, max_tokens=size))[0])
            tok.append(timed(lambda: tokenize(model, text, size))[0])
        p, t, k = median(plain), median(traced), median(tok)
        target = TARGET_RATIO.get(size) if not ctx.quick else None
        rows += [
            Row(1, f"{tag}plain forward, {len(ids)} tokens (median of {len(plain)})", p, "s"),
            Row(1, f"{tag}trace(), text in → Trace out, {len(ids)} tokens (median)", t, "s"),
            Row(1, f"{tag}trace() ÷ plain forward, {len(ids)} tokens", t / p, "×", target),
            Row(1, f"{tag}(trace() − tokenization) ÷ plain, {len(ids)} tokens", (t - k) / p, "×",
                note=f"tokenization {k * 1000:.1f} ms"),
        ]
    return rows


class PeakRSS:
    """Samples this process's resident memory in a thread; ``peak`` is the highest seen."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil
        self._proc = psutil.Process()
        self.interval = interval
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.end = self._proc.memory_info().rss
        self.peak = max(self.peak, self.end)


def section_memory(ctx: Context, device: str) -> list[Row]:
    """§2: bytes a 1024-token trace keeps, and the process's peak RSS growth while tracing."""
    model, tag = ctx.model(device), _tag(device)
    size = ctx.sizes(device)[-1]
    text = long_text(1)
    ids, _ = tokenize(model, text, size)
    x = torch.tensor([ids], device=model.device)
    gc.collect()
    with PeakRSS() as plain_mem:
        plain_forward(model, x)
    gc.collect()
    with PeakRSS() as mem:
        tr = explainer.trace(model, text, max_tokens=size)
    mb = 1e6
    rows = [
        Row(2, f"{tag}Trace.nbytes(), {tr.n_tokens} tokens ({tr.precision})", tr.nbytes() / mb, "MB",
            None if ctx.quick else TARGET_TRACE_MB),
        Row(2, f"{tag}process peak RSS growth during the trace", (mem.peak - mem.start) / mb, "MB",
            note=f"{(mem.end - mem.start) / mb:.0f} MB still held after"),
        Row(2, f"{tag}for scale: peak RSS growth of a plain forward", (plain_mem.peak - plain_mem.start) / mb, "MB"),
    ]
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(model.device)
        base = torch.cuda.memory_allocated(model.device)
        explainer.trace(model, text, max_tokens=size)
        rows.append(Row(2, f"{tag}peak GPU memory growth during the trace",
                        (torch.cuda.max_memory_allocated(model.device) - base) / mb, "MB"))
    return rows


def section_classroom(ctx: Context, device: str) -> list[Row]:
    """§7: 30 different 64-token prompts traced at once from 30 threads; each must be exact."""
    model, tag = ctx.model(device), _tag(device)
    students = 6 if ctx.quick else STUDENTS
    size = min(CLASSROOM_TOKENS, model.context_length)
    prompts = [long_text(i, sentences=40) for i in range(students)]
    explainer.trace(model, prompts[0], max_tokens=size)                  # warm-up
    start_line = threading.Barrier(students)
    latency: list[float] = [0.0] * students
    traces: list[Any] = [None] * students
    errors: list[BaseException] = []

    def student(i: int) -> None:
        try:
            start_line.wait()
            latency[i], traces[i] = timed(lambda: explainer.trace(model, prompts[i], max_tokens=size))
        except BaseException as err:  # noqa: BLE001 - reported in the table
            errors.append(err)

    threads = [threading.Thread(target=student, args=(i,)) for i in range(students)]
    wall, _ = timed(lambda: [t.start() for t in threads] + [t.join() for t in threads])
    if errors:
        raise errors[0]
    alone = [explainer.trace(model, p, max_tokens=size) for p in prompts]
    exact = sum(_same(a, b) for a, b in zip(traces, alone))
    distinct = len({tuple(t.token_ids.tolist()) for t in traces})
    return [
        Row(7, f"{tag}p50 latency, {students} concurrent {size}-token traces", percentile(latency, 50), "s"),
        Row(7, f"{tag}p95 latency, {students} concurrent {size}-token traces", percentile(latency, 95), "s",
            None if ctx.quick else TARGET_CLASSROOM_P95, note=f"all done in {wall:.1f} s"),
        Row(7, f"{tag}traces that differ from the same prompt traced alone (bitwise)", float(students - exact),
            "", 0.0, note=f"{exact}/{students} exact, {distinct} distinct prompts"),
    ]


def _same(a: Any, b: Any, tol: float = 1e-4) -> bool:
    """Whether a trace made in a batch holds what the same prompt traced alone holds (≤ ``tol``)."""
    return torch.equal(a.token_ids, b.token_ids) and all(
        torch.allclose(x, y, atol=tol, rtol=tol) for x, y in ((a._residual, b._residual),
                                                               (a._last_logits, b._last_logits)))


def _tag(device: str) -> str:
    return "" if device == "cpu" else f"[{device}] "
