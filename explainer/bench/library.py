"""Benchmark sections on the library itself: 1 (trace vs a plain forward) and 2 (memory).

The baseline is the fastest plain forward of the same weights: the Hugging Face model as it is
loaded (sdpa attention), same token ids, no cache, inference mode, no hooks — and it computes
the logits at every position, as a plain forward does. Repeats are interleaved (plain, trace,
plain, trace, …) so a noisy machine slows both alike; times are medians. On a GPU both sides are
timed until their numbers are there (a trace returns while its kernels still run), up to each
model's whole context (Gemma 3: 32,768 tokens).
"""
from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

import explainer
from explainer import capture, graphs
from explainer.bench.rows import Row, median, timed
from explainer.budget import TooLarge
from explainer.devices import synchronize
from explainer.models import MULTILINGUAL_NAME, LoadedModel
from explainer.trace import Trace
from explainer.tracing import estimate_bytes, tokenize

SIZES = (64, 256, 1024, 4096)
MULTILINGUAL_SIZES = (256, 1024)
QUICK_SIZES = (16, 64)
CUDA_SIZES = (64, 256, 1024, 4096, 8192)            # on a GPU: both models at each size …
CUDA_MULTILINGUAL_SIZES = CUDA_SIZES + (32_768,)     # … and Gemma 3's whole context
BESIDE_GPU_SIZES = (64,)             # with --device cuda, the CPU rows: 64 tokens on this machine's cores
TARGET_RATIO = 1.15                  # trace() ÷ plain sdpa forward, every size (CPU and GPU)
TARGET_RATIO_MULTILINGUAL = 1.25     # … Gemma 3 on a CPU
TARGET_KEPT_MB = {1024: 150.0, 8192: 1024.0}
TARGET_KEPT_MULTILINGUAL_MB = 600.0
LONGEST = 8192

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


_SENTENCES_ZH = (
    "法国的首都是巴黎，德国的首都是柏林。", "语言模型把文字读成词元，然后预测下一个词元。",
    "每一层都把自己算出的结果加到残差流里。", "注意力让每个位置回头去看它前面的词。",
    "早上面包师打开店门，把新鲜的面包卖给邻居。", "河水穿过山谷，流过古老的磨坊和安静的村庄。",
    "教室里的学生输入自己的句子，看着预测不断变化。", "火车终于到站时，站台上挤满了旅客和他们的行李。",
)


def long_chinese_text(variant: int = 0, sentences: int = 300) -> str:
    """Plain Chinese prose (300 sentences ≈ 3,000 Gemma tokens); ``variant`` gives a different text."""
    n = len(_SENTENCES_ZH)
    return f"第{variant}篇：" + "".join(_SENTENCES_ZH[(variant + 3 * k + k // n) % n] for k in range(sentences))


def long_text(variant: int = 0, sentences: int = 400) -> str:
    """Plain English prose (400 sentences ≈ 6,000 tokens); ``variant`` gives a different text."""
    n = len(_SENTENCES)
    parts = [f"Note {variant}:"] + [_SENTENCES[(variant + 5 * k + k // n) % n] for k in range(sentences)]
    return " ".join(parts)


def document(variant: int = 0) -> str:
    """A text long enough for the whole 8,192-token context."""
    return long_text(variant, sentences=700)


@dataclass
class Context:
    """Models shared by the sections of one run, loaded once per device."""

    model_arg: Any = None            # None (embedded default), a model name, or a LoadedModel
    quick: bool = False
    beside_gpu: bool = False         # a CUDA run: the CPU measures only §1 at 64 tokens
    _models: dict[tuple[str, str], LoadedModel] = field(default_factory=dict)

    def model(self, device: str, which: str = "default") -> LoadedModel:
        """``which``: "default" (the run's model) or "multilingual" (the embedded Gemma 3)."""
        key = (which, device)
        if key not in self._models:
            arg = self.model_arg if which == "default" else MULTILINGUAL_NAME
            if isinstance(arg, LoadedModel):
                self._models[key] = arg if arg.device.type == device else explainer.wrap(
                    arg.hf_model, arg.tokenizer, arg.name, device)
            else:
                self._models[key] = explainer.load_model(arg, device=device)
        return self._models[key]

    @property
    def multilingual(self) -> bool:
        """Whether this run also measures the multilingual model (not with a model given by a test)."""
        return not self.quick and self.model_arg is None

    def sizes(self, device: str, which: str = "default") -> list[int]:
        if device == "cpu" and self.beside_gpu and not self.quick:
            return list(BESIDE_GPU_SIZES) if which == "default" else []
        if self.quick:
            chosen = QUICK_SIZES
        elif device == "cuda":
            chosen = CUDA_SIZES if which == "default" else CUDA_MULTILINGUAL_SIZES
        else:
            chosen = SIZES if which == "default" else MULTILINGUAL_SIZES
        limit = self.model(device, which).context_length
        return sorted({min(s, limit) for s in chosen})


def sync(model: LoadedModel) -> None:
    synchronize(model.device)


def traced(model: LoadedModel, text: str, size: int) -> Trace:
    """``trace()`` until its numbers are there: on a GPU the call returns while its kernels still run."""
    tr = explainer.trace(model, text, max_tokens=size)
    sync(model)
    return tr


def text_for(size: int) -> str:
    """English prose of at least ``size`` tokens (the same text as before up to 4,096 tokens)."""
    return long_text(0, sentences=max(400, size // 8))


def plain_forward(model: LoadedModel, input_ids: torch.Tensor, last_only: bool = False) -> torch.Tensor:
    """The baseline: the same HF model as loaded (sdpa), no cache, inference mode, no hooks.
    ``last_only``: logits at the last position only (what a trace computes during its pass)."""
    with torch.inference_mode():
        out = model.hf_model(input_ids=input_ids, use_cache=False, **({"logits_to_keep": 1} if last_only else {}))
    sync(model)
    return out.logits


def _repeats(size: int, quick: bool) -> int:
    if quick:
        return 2
    return 9 if size <= 64 else 5 if size <= 256 else 3 if size <= 1024 else 2


def section_ratio(ctx: Context, device: str) -> list[Row]:
    """§1: trace() ÷ plain sdpa forward at each size, for the default and the multilingual model; on the
    CPU also a stand-in for a GPU bound by launching kernels (:func:`_launch_bound`)."""
    rows = _ratios(ctx, device, "default", TARGET_RATIO)
    if ctx.multilingual and not (device == "cpu" and ctx.beside_gpu):
        rows += _ratios(ctx, device, "multilingual", TARGET_RATIO if device == "cuda" else TARGET_RATIO_MULTILINGUAL)
    if device == "cpu" and not ctx.beside_gpu:
        rows += _launch_bound(ctx)
    return rows


def _interleaved(runs: list[Callable[[], Any]], repeats: int, warm_ups: int = 1) -> list[float]:
    """The median seconds of each of ``runs``, run in turn (plain, trace, plain, trace, …) ``repeats``
    times after ``warm_ups`` untimed rounds."""
    for _ in range(warm_ups):
        for run in runs:
            run()
    seconds: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, seen in zip(runs, seconds):
            seen.append(timed(run)[0])
    return [median(seen) for seen in seconds]


def _launch_bound(ctx: Context, size: int = 64) -> list[Row]:
    """trace() ÷ plain forward (last position's logits) where issuing each operation costs more than
    computing it, as launching each kernel does for a small model on a GPU: a random Llama with the
    default model's layers and tokenizer at width 64, one CPU thread, captures kept and reduced at the
    end as on a GPU. What is left is the trace's own fixed cost (hooks, reductions, tokenizing)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    base = ctx.model("cpu")
    torch.manual_seed(0)
    hf = LlamaForCausalLM(LlamaConfig(vocab_size=len(base.tokenizer), hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=base.n_layers, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=4 * size))
    model = explainer.wrap(hf, base.tokenizer, f"launch-bound stand-in, {base.n_layers} layers")
    text = text_for(size)
    ids, _ = tokenize(model, text, size)
    x = torch.tensor([ids])
    threads, batched = torch.get_num_threads(), capture.BATCHED_ON
    torch.set_num_threads(1)
    capture.BATCHED_ON = batched + ("cpu",)                             # captures kept as a GPU keeps them
    try:
        p, t = _interleaved([lambda: plain_forward(model, x, last_only=True), lambda: traced(model, text, size)],
                            5 if ctx.quick else 60, warm_ups=3)
    finally:
        torch.set_num_threads(threads)
        capture.BATCHED_ON = batched
    return [Row(1, f"trace() ÷ plain forward (last position's logits) on a launch-bound stand-in: a random Llama "
                   f"of {base.n_layers} layers at width 64, one thread, {len(ids)} tokens", t / p, "×",
                note=f"{t * 1000:.1f} ms vs {p * 1000:.1f} ms: the trace's own fixed cost, as a small model on a "
                     "GPU pays it per kernel launch")]


def _ratios(ctx: Context, device: str, which: str, target: float) -> list[Row]:
    model, tag = ctx.model(device, which), device_tag(device, ctx.model(device, which))
    rows: list[Row] = []
    for size in ctx.sizes(device, which):
        text = text_for(size)
        ids, _ = tokenize(model, text, size)
        x = torch.tensor([ids], device=model.device)                     # (1, T)
        repeats = _repeats(size, ctx.quick)
        p, t, q = _interleaved([lambda: plain_forward(model, x), lambda: traced(model, text, size),
                                lambda: plain_forward(model, x, last_only=True)], repeats)
        graphed = _graphed(model, text, size, x) if device == "cuda" and not ctx.quick else []
        rows += [
            Row(1, f"{tag}plain sdpa forward, {len(ids)} tokens (median of {repeats})", p, "s"),
            Row(1, f"{tag}trace(), text in → Trace out, {len(ids)} tokens (median)", t, "s"),
            Row(1, f"{tag}trace() ÷ plain sdpa forward, {len(ids)} tokens", t / p, "×",
                None if ctx.quick else target),
            Row(1, f"{tag}trace() ÷ plain sdpa forward with the last position's logits only, {len(ids)} tokens",
                t / q, "×", note=f"{q:.3f} s; the trace's own pass computes only those (the rest on demand)"),
        ] + [Row(1, f"{tag}trace() replayed as a CUDA graph ({graphs.OPTION}=1, off by default) ÷ plain sdpa "
                    f"forward, {len(ids)} tokens", g / p, "×", note=f"{g:.4f} s; logits {err:.1e} from the usual trace")
             for g, err in graphed]
    return rows


def _graphed(model: LoadedModel, text: str, size: int, x: torch.Tensor) -> list[tuple[float, float]]:
    """[(median seconds, largest relative logit difference)] of traces with CUDA graphs on, interleaved
    with plain forwards; [] past the lengths graphs serve."""
    if size > graphs.LENGTHS[-1]:
        return []
    import os
    before = os.environ.pop(graphs.OPTION, None)
    usual = traced(model, text, size).next_token_logits
    os.environ[graphs.OPTION] = "1"
    try:
        got = traced(model, text, size).next_token_logits                # captured, then replayed below
        times = []
        for _ in range(_repeats(size, False)):
            plain_forward(model, x)
            times.append(timed(lambda: traced(model, text, size))[0])
    finally:
        os.environ.pop(graphs.OPTION, None)
        if before is not None:
            os.environ[graphs.OPTION] = before
    return [(median(times), float((got - usual).abs().max() / usual.abs().max()))]


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
    """§2: what a trace keeps at 1024 and 8,192 tokens, the peak while tracing, and a refusal."""
    sizes = [ctx.sizes(device)[-1]] if ctx.quick else [1024, LONGEST]
    rows = [row for size in sizes for row in _kept(ctx, device, "default", size)]
    if ctx.multilingual:
        for size in (1024, LONGEST) + ((CUDA_MULTILINGUAL_SIZES[-1],) if device == "cuda" else ()):
            rows += _kept(ctx, device, "multilingual", size)
    return rows + _refusal(ctx, device)


def _kept(ctx: Context, device: str, which: str, size: int) -> list[Row]:
    model = ctx.model(device, which)
    tag, mb = device_tag(device, model), 2**20
    size = min(size, model.context_length)
    gc.collect()
    with PeakRSS() as mem:
        seconds, tr = timed(lambda: traced(model, _memory_text(size), size))
    target = (TARGET_KEPT_MULTILINGUAL_MB if which == "multilingual" and size <= 1024
              else TARGET_KEPT_MB.get(size) if which == "default" else None)
    rows = [
        Row(2, f"{tag}memory a trace keeps, {tr.n_tokens} tokens", tr.kept_bytes() / mb, "MB",
            None if ctx.quick else target, note=f"+ up to {tr.cache_budget() / mb:.0f} MB of recomputed parts"),
        Row(2, f"{tag}process peak RSS growth while tracing {tr.n_tokens} tokens", (mem.peak - mem.start) / mb, "MB",
            note=f"{seconds:.1f} s"),
    ]
    if model.device.type == "cuda":
        del tr
        gc.collect()
        torch.cuda.reset_peak_memory_stats(model.device)
        base = torch.cuda.memory_allocated(model.device)
        tr = traced(model, _memory_text(size), size)
        peak, estimate = torch.cuda.max_memory_allocated(model.device) - base, estimate_bytes(model, tr.n_tokens)
        rows += [Row(2, f"{tag}peak GPU memory growth, {tr.n_tokens} tokens", peak / mb, "MB"),
                 Row(2, f"{tag}peak GPU memory growth ÷ the budget's estimate, {tr.n_tokens} tokens", peak / estimate,
                     "×", None if ctx.quick else 1.0, note=f"estimate {estimate / mb:.0f} MB; above 1 the budget "
                                                            "could admit a request that does not fit")]
    return rows


def _memory_text(size: int) -> str:
    return document(1) if size <= LONGEST else long_text(1, sentences=size // 8)


def _refusal(ctx: Context, device: str) -> list[Row]:
    """A request above the budget is refused before it starts, and the model keeps serving."""
    import os
    model, tag = ctx.model(device), device_tag(device, ctx.model(device))
    old = os.environ.get("LLM_EXPLAINER_MEMORY_GB")
    os.environ["LLM_EXPLAINER_MEMORY_GB"] = "0.001"
    try:
        start = time.perf_counter()
        refused = False
        try:
            explainer.trace(model, document(2), max_tokens=LONGEST)
        except TooLarge:
            refused = True
        seconds = time.perf_counter() - start
    finally:
        if old is None:
            del os.environ["LLM_EXPLAINER_MEMORY_GB"]
        else:
            os.environ["LLM_EXPLAINER_MEMORY_GB"] = old
    served = explainer.trace(model, "The capital of France is", max_tokens=16).n_tokens > 0
    return [Row(2, f"{tag}a request over the memory budget: refused before it starts, then the next one served",
                seconds * 1000 if refused and served else None, "ms", None if ctx.quick else 1000.0,
                note=("refused" if refused else "NOT refused") + ("; next trace served" if served else "; NOT served"))]


def device_tag(device: str, model: LoadedModel | None = None) -> str:
    parts = ([] if device == "cpu" else [device]) + ([model.name] if model is not None else [])
    return f"[{', '.join(parts)}] " if parts else ""
