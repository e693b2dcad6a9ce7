"""Benchmark sections on the Streamlit app: 4 (browser), 5 (view change), 8 (figure bytes)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from explainer.bench.rows import Row, median, timed
from explainer.registry import slugs
from explainer.paths import REPO_ROOT

APP = REPO_ROOT / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CHART = "[data-testid='stPlotlyChart']"
TARGET_FIRST_CHART = 8.0
TARGET_VIEW_CHANGE_MS = 150.0
TARGET_PAGE_MB = 5.0
APPTEST_TIMEOUT = 600.0
# (page, the value its widget shows, what it changes): views that must not cost a forward pass.
VIEW_CONTROLS = (("attention", "layer", "layer"), ("attention", "head", "head"),
                 ("next_token", "temp", "temperature"))


# ------------------------------------------------------------------ §4 browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError("streamlit did not answer its health check")


@contextmanager
def running_app(env: dict[str, str] | None = None) -> Iterator[str]:
    """``streamlit run app.py`` on a free port, as a user starts it; yields its address, then stops it."""
    port = _free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=str(REPO_ROOT), stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})})
    try:
        _wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def section_browser(quick: bool = False) -> list[Row]:
    """§4: open the app in Chromium and time the first Plotly chart (after a warm-up visit)."""
    metric = "open the app → first chart (cached model, 2nd visit)"
    if not CHROMIUM.exists():
        return [Row(4, metric, note="skipped: no chromium", skipped=True)]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [Row(4, metric, note="skipped: playwright not installed", skipped=True)]
    with running_app() as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            warm, warm_err = _visit(browser, base + "/", timeout_s=600)
            visits = [_visit(browser, base + "/", timeout_s=120) for _ in range(1 if quick else 3)]
        finally:
            browser.close()
    times = [t for t, err in visits if t is not None]
    errors = [err for _, err in [(warm, warm_err), *visits] if err]
    note = f"warm-up visit {warm:.1f} s" if warm is not None else "warm-up found no chart"
    if errors:
        note += "; " + errors[0]
    return [Row(4, metric + (f", median of {len(times)}" if len(times) > 1 else ""),
                median(times) if times else None, "s", TARGET_FIRST_CHART, note=note)]


def _visit(browser: Any, url: str, timeout_s: float) -> tuple[float | None, str]:
    """Seconds from navigation to the first chart in a fresh browser context (a new session)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        start = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_selector(f"{CHART}, [data-testid='stException']", timeout=timeout_s * 1000)
        elapsed = time.perf_counter() - start
        if page.query_selector(CHART) is None:
            return None, "the page showed an exception instead of a chart"
        return elapsed, ""
    except Exception as err:  # noqa: BLE001 - playwright timeouts and navigation errors
        return None, f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
    finally:
        context.close()


# ------------------------------------------------------------------ §5 view change


def section_view_change(quick: bool = False) -> list[Row]:
    """§5: server time of a rerun after a view-only change, and proof that no trace was computed,
    on the default model (English) and on the multilingual one (中文: the Chinese prompt, and a
    1,024-token Chinese text)."""
    rows = _view_changes({}, "", quick)
    if not quick:
        from explainer.bench.library import long_chinese_text
        rows += _view_changes({"lang": "zh"}, "[gemma-3-270m, 中文] ", quick)
        rows += _view_changes({"lang": "zh", "prompt": long_chinese_text(), "max_tokens": 1024},
                              "[gemma-3-270m, 中文, 1,024 tokens] ", quick)
    return rows


def _view_changes(values: dict[str, Any], tag: str, quick: bool) -> list[Row]:
    from explainer.ui.tools.apptest import find_widget, open_page, set_other_value
    from explainer.ui.frame.shared import traces_computed
    from explainer.ui.frame.binding import widget_key

    rows: list[Row] = []
    opened: dict[str, Any] = {}
    for page, name, label in VIEW_CONTROLS:
        key = widget_key(name)
        metric = f"{tag}{label} change on '{page}' ({key}): rerun"
        if page not in opened:
            opened[page] = open_page(page, timeout=APPTEST_TIMEOUT, **values)
        at = opened[page]
        if at.exception:
            rows.append(Row(5, metric, note=f"page raised: {str(at.exception[0].value)[:120]}", error=True))
            continue
        widget = find_widget(at, key)
        if widget is None:
            rows.append(Row(5, metric, target=TARGET_VIEW_CHANGE_MS, note=f"no widget with key {key!r}"))
            continue
        before, times = traces_computed(), []
        for k in range(2 if quick else 5):
            set_other_value(find_widget(at, key), k)
            times.append(timed(at.run)[0] * 1000)
        new_traces = traces_computed() - before
        note = f"{new_traces} new traces" + (f"; error: {str(at.exception[0].value)[:100]}" if at.exception else "")
        rows.append(Row(5, metric + f", median of {len(times)}", median(times), "ms", TARGET_VIEW_CHANGE_MS,
                        note=note))
        rows.append(Row(5, f"{tag}{label} change: new forward passes", float(new_traces), "", 0.0))
    return rows


# ------------------------------------------------------------------ §8 figure bytes


def section_figure_bytes(quick: bool = False) -> list[Row]:
    """§8: JSON bytes of the figures each page sends, default prompt and a 1024-token prompt."""
    from explainer.bench.library import long_text
    from explainer.ui.tools.apptest import chart_bytes, open_page

    rows: list[Row] = []
    long = {"max_tokens": 1024, "prompt": long_text(2)}
    for setting, values in (("default prompt", {}), ("1024 tokens", long)):
        for slug in slugs():
            at = open_page(slug, timeout=APPTEST_TIMEOUT, **values)
            size, n = chart_bytes(at)
            note = f"{n} charts"
            if at.exception:
                note += f"; page raised: {str(at.exception[0].value)[:100]}"
            rows.append(Row(8, f"{slug}, {setting}", size / 1e6, "MB", TARGET_PAGE_MB, note=note,
                            error=bool(at.exception)))
            if quick:
                break
    return rows
