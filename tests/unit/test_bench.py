"""The benchmark's table and verdicts on handmade numbers, and a quick run on a tiny model.

No timed assertions: the speed targets live in the benchmark's table, not in the tests.
"""
from __future__ import annotations

import argparse

import pytest

from explainer import bench
from explainer.bench import Row, fmt, judge, markdown_report, parse_sections, percentile, table_lines


def test_judge_against_a_ceiling():
    assert judge(1.05, 1.10) == "pass"
    assert judge(1.10, 1.10) == "pass"            # the target itself passes
    assert judge(1.11, 1.10) == "FAIL"
    assert judge(None, 1.10) == "FAIL"            # no measurement cannot pass a target
    assert judge(3.0, None) == "info"
    assert judge(None, 1.0, skipped=True) == "skipped"
    assert judge(0.5, 1.0, error=True) == "error"


def test_rows_report_their_result():
    assert Row(1, "ratio", 1.3, "×", 1.25).result == "FAIL"
    assert Row(2, "MB", 587.2, "MB", 600.0).result == "pass"
    assert Row(4, "browser", note="skipped: no chromium", skipped=True).result == "skipped"


def test_formatting():
    assert fmt(1.234, "×") == "1.23×"
    assert fmt(0.1234, "s") == "0.123 s"
    assert fmt(12.345, "s") == "12.35 s"
    assert fmt(587.159, "MB") == "587.2 MB"
    assert fmt(None, "s") == "—"
    assert fmt(0.0, "") == "0"


def test_table_lines_on_handmade_rows():
    rows = [Row(1, "trace() ÷ plain forward, 64 tokens", 1.04, "×", 1.10),
            Row(1, "trace() ÷ plain forward, 1024 tokens", 1.31, "×", 1.25),
            Row(4, "open the app → first chart", note="skipped: no chromium", skipped=True),
            Row(7, "a | pipe", 0.0, "", 0.0, note="30/30 exact")]
    lines = table_lines(rows)
    assert lines[0] == "| § | Metric | Measured | Target | Result |"
    assert lines[2] == "| 1 | trace() ÷ plain forward, 64 tokens | 1.04× | ≤ 1.10× | pass |"
    assert lines[3] == "| 1 | trace() ÷ plain forward, 1024 tokens | 1.31× | ≤ 1.25× | FAIL |"
    assert lines[4] == "| 4 | open the app → first chart | skipped: no chromium | — | skipped |"
    assert lines[5] == "| 7 | a \\| pipe | 0 (30/30 exact) | ≤ 0 | pass |"


def test_markdown_report_has_the_machine_and_a_summary():
    rows = [Row(1, "x", 1.0, "×", 1.1), Row(2, "y", 700.0, "MB", 600.0)]
    text = markdown_report(rows, {"CPU": "Test CPU", "Cores": "2"}, 3.0, "python -m explainer bench")
    assert "- **CPU**: Test CPU" in text and "| 2 | y | 700.0 MB | ≤ 600.0 MB | FAIL |" in text
    assert "1 passed, 1 missed or failed, 0 skipped." in text


def test_percentiles_and_sections():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([1.0, 2.0], 95) == pytest.approx(1.95)
    assert parse_sections("all") == list(bench.ALL_SECTIONS)
    assert parse_sections("7, 1,2") == [1, 2, 7]
    with pytest.raises(ValueError):
        parse_sections("1,14")
    assert parse_sections("10") == [10]
    assert parse_sections("12") == [12] and parse_sections("13") == [13]


def test_page_slugs_come_from_the_registry():
    from explainer.bench import app
    from explainer.registry import slugs
    assert app.slugs is slugs and slugs()[0] == "overview" and "attention" in slugs() and "next_token" in slugs()


def test_quick_run_on_a_tiny_model(tiny_llama, tmp_path, capsys):
    out = tmp_path / "BENCH.md"
    args = argparse.Namespace(quick=True, sections="1,2,10", out=str(out), device="cpu", model=tiny_llama)
    assert bench.run_benchmark(args) == 0
    text = out.read_text(encoding="utf-8")
    assert "## Machine" in text and "**torch**" in text and "**CPU**" in text
    for metric in ("plain sdpa forward, 16 tokens", "trace() ÷ plain sdpa forward, 64 tokens",
                   "memory a trace keeps, 64 tokens", "peak RSS growth", "refused before it starts",
                   "64-row attention window", "whole-model summaries", "launch-bound stand-in: a random Llama of 2 layers"):
        assert metric in text, metric
    refusal = [line for line in text.splitlines() if "refused before it starts" in line][0]
    assert "refused; next trace served" in refusal
    assert "error" not in text.split("## Results")[1]
    assert "| § | Metric |" in capsys.readouterr().out


def test_classroom_results_are_exact_on_a_tiny_model(tiny_gpt2):
    from explainer.bench.room import section_classroom
    from explainer.bench.library import Context
    rows = section_classroom(Context(model_arg=tiny_gpt2, quick=True), "cpu")
    mismatch = [r for r in rows if "differ from" in r.metric][0]
    assert mismatch.value == 0 and mismatch.result == "pass"
    crowd = [r for r in rows if "students at once" in r.metric][0]
    assert crowd.value > 0 and crowd.unit == "traces/s"


def test_a_broken_section_becomes_an_error_row():
    def broken():
        raise RuntimeError("boom")
    rows = bench._run_section(3, broken)
    assert rows[0].result == "error" and "boom" in rows[0].note


def test_patching_section_on_a_tiny_model(tiny_gpt2):
    from explainer.bench.library import Context
    from explainer.bench.patching import section_patching
    first, again = section_patching(Context(model_arg=tiny_gpt2, quick=True), "cpu")
    assert first.metric.startswith("[tiny-gpt2] activation patching, all four sites, 12-token pair (")
    assert first.unit == "s"
    assert first.value > 0 and first.target == 15.0 and "patched runs" in first.note
    assert f"{tiny_gpt2.n_layers * (3 * 11 + tiny_gpt2.n_heads):,} patched runs" in first.note   # the first word changes
    assert again.unit == "ms" and again.value < 1000 * first.value
