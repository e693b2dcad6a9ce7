"""``python -m explainer bench``: how fast the explainer is, measured against plain baselines.

One run measures every section (or ``--sections 1,2,7``) and prints a table of
section | metric | measured | target | result, and writes it as Markdown with a description
of the machine to ``--out``. Where two things are compared (a trace against a plain
forward pass) their repeats are interleaved, so a noisy machine slows both alike and the
ratio still holds. A missed target is reported in the table, never raised: the function
returns 0 either way.

The sections live in ``library`` (1, 2: the library against a plain forward), ``room``
(7, 10: a room at once, whole documents), ``app`` (4, 5, 8: the Streamlit app), ``cold``
(3, 6, 9: cold starts, the vocabulary map, training), ``walk`` (11: every page in a browser, a
room of sessions on one page, attribution within its budget), ``patching`` (12: activation
patching) and ``serving`` (13: a lecture hall on Ray Serve, with ``hall``, its front end stand-in, and
``overload``); they share only ``rows`` (the table's
rows and statistics) with this runner. Nothing outside this package imports it, except the
command line.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

from explainer.bench import app, cold, library, patching, room, serving, walk
from explainer.bench.rows import Row, fmt, judge, median, percentile, timed

__all__ = ["ALL_SECTIONS", "Row", "fmt", "judge", "markdown_report", "median", "parse_sections", "percentile",
           "run_benchmark", "table_lines", "timed"]

ALL_SECTIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
SECTION_TITLES = {
    1: "trace() vs plain forward", 2: "trace memory", 3: "model ready", 4: "browser first chart",
    5: "view change (no forward)", 6: "vocabulary map", 7: "a room at once (30, then 300)",
    8: "figure bytes per page", 9: "tiny-model training", 10: "whole documents (8,192 tokens)",
    11: "pages that never wait",
    12: "activation patching (a 12-token pair, all four sites)",
    13: "a lecture hall: in-process and on Ray Serve (Locust)",
}


def table_lines(rows: Sequence[Row]) -> list[str]:
    """The Markdown table (also readable as plain text)."""
    lines = ["| § | Metric | Measured | Target | Result |", "|---|---|---|---|---|"]
    for r in rows:
        measured = fmt(r.value, r.unit) if r.value is not None else ""
        if r.note:
            measured = f"{measured} ({r.note})" if measured else r.note
        target = "—" if r.target is None else "≤ " + fmt(r.target, r.unit)
        cells = [str(r.section), r.metric, measured, target, r.result]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def machine_info(device: str = "cpu") -> dict[str, str]:
    """CPU model, cores, RAM, load, versions and the accelerator, for the report header."""
    import torch

    info = {"CPU": _cpu_model(), "Cores": _cores(), "RAM": _ram(), "OS": platform.platform(),
            "Python": platform.python_version(), "torch": torch.__version__,
            "torch threads": str(torch.get_num_threads())}
    for pkg in ("transformers", "streamlit"):
        try:
            info[pkg] = __import__(pkg).__version__
        except Exception:  # noqa: BLE001 - a missing package is just not described
            pass
    info["Device"] = device
    if torch.cuda.is_available():
        info["GPU"] = torch.cuda.get_device_name(0)
    if hasattr(os, "getloadavg"):
        info["Load average (1/5/15 min)"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cores() -> str:
    logical = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    return f"{usable} usable ({logical} logical)"


def _ram() -> str:
    try:
        import psutil
        return f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        return "unknown"


def markdown_report(rows: Sequence[Row], info: dict[str, str], seconds: float, argv: str) -> str:
    head = ["# LLM Explainer benchmark", "",
            f"`{argv}` — generated {time.strftime('%Y-%m-%d %H:%M:%S')} in {seconds:.0f} s.", "",
            "## Machine", ""]
    head += [f"- **{k}**: {v}" for k, v in info.items()]
    head += ["", "## Results", "",
             "Ratios come from interleaved repeats (plain, trace, plain, trace, …); times are medians.", ""]
    failed = [r for r in rows if r.result in ("FAIL", "error")]
    tail = ["", f"{sum(r.result == 'pass' for r in rows)} passed, {len(failed)} missed or failed, "
            f"{sum(r.result == 'skipped' for r in rows)} skipped."]
    return "\n".join(head + table_lines(rows) + tail) + "\n"


def parse_sections(spec: str | None) -> list[int]:
    if not spec or spec.strip().lower() == "all":
        return list(ALL_SECTIONS)
    chosen = sorted({int(part) for part in spec.replace(" ", "").split(",") if part})
    bad = [s for s in chosen if s not in ALL_SECTIONS]
    if bad:
        raise ValueError(f"Unknown benchmark section(s) {bad}; choose from 1–{ALL_SECTIONS[-1]}.")
    return chosen


def run_benchmark(args: argparse.Namespace) -> int:
    """Run the chosen sections, print the table, write the Markdown report. Always returns 0.

    ``args``: quick, sections, out, device; optionally ``model`` (a LoadedModel or a model
    name) to benchmark instead of the embedded default (tests pass a tiny model).

    With ``device="cuda"`` the report (default ``BENCHMARK_CUDA.md``) holds sections 1, 2, 7 and
    10 on the GPU — trace ÷ plain forward up to each model's whole context, memory, a room of 300
    — and, from the CPU, §1's 64-token rows on this machine's cores (``sections="12"`` times activation
    patching on the GPU). ``out=None`` writes nothing.
    """
    from explainer.models import pick_device

    primary = pick_device(getattr(args, "device", "auto") or "auto")
    on_gpu = primary.type == "cuda"
    sections = parse_sections(getattr(args, "sections", None) or ("1,2,7,10" if on_gpu else "all"))
    quick = bool(getattr(args, "quick", False))
    start = time.perf_counter()
    ctx = library.Context(model_arg=getattr(args, "model", None), quick=quick, beside_gpu=on_gpu)
    runners: dict[int, Callable[[], list[Row]]] = {
        1: lambda: library.section_ratio(ctx, "cpu"),
        2: lambda: library.section_memory(ctx, "cpu"),
        3: lambda: cold.section_model_ready(quick),
        4: lambda: app.section_browser(quick),
        5: lambda: app.section_view_change(quick),
        6: lambda: cold.section_vocab_map(quick),
        7: lambda: room.section_classroom(ctx, "cpu"),
        8: lambda: app.section_figure_bytes(quick),
        9: lambda: cold.section_training(quick),
        10: lambda: room.section_documents(ctx, "cpu"),
        11: lambda: walk.section_never_wait(quick),
        12: lambda: patching.section_patching(ctx, "cpu"),
        13: lambda: serving.section_serving(quick),
    }
    gpu_runners = {1: library.section_ratio, 2: library.section_memory, 7: room.section_classroom,
                   10: room.section_documents, 12: patching.section_patching}
    rows: list[Row] = []
    for section in sections:
        if not on_gpu or section not in gpu_runners or section == 1:     # beside a GPU: §1's 64-token CPU rows
            rows += _run_section(section, runners[section])
        if on_gpu and section in gpu_runners:
            rows += _run_section(section, lambda: gpu_runners[section](ctx, "cuda"))
    info = machine_info(str(primary))
    report = markdown_report(rows, info, time.perf_counter() - start,
                             "python -m explainer bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"]
                             else "run_benchmark(" + ", ".join(f"{k}={v!r}" for k, v in vars(args).items()
                                                              if k != "model") + ")")
    print("\n".join(table_lines(rows)))
    out = getattr(args, "out", "")
    out = ("BENCHMARK_CUDA.md" if on_gpu else "BENCHMARK.md") if out == "" else out
    if out:
        Path(out).write_text(report, encoding="utf-8")
        print(f"\nwritten to {out}")
    return 0


def _run_section(section: int, runner: Callable[[], list[Row]]) -> list[Row]:
    print(f"[bench] section {section}: {SECTION_TITLES[section]} …", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        rows = runner()
    except Exception as err:  # noqa: BLE001 - one broken section must not hide the others
        traceback.print_exc(file=sys.stderr)
        rows = [Row(section, SECTION_TITLES[section], note=f"error: {type(err).__name__}: {err}"[:300],
                    error=True)]
    print(f"[bench] section {section} took {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    for row in rows:
        print(f"[bench]   {row.metric}: {fmt(row.value, row.unit)} {row.note} -> {row.result}",
              file=sys.stderr, flush=True)
    return rows
