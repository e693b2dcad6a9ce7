"""Pages that never wait, measured (section 11; the browser tests use the same code): every page in
Chromium timed to its first chart, a room of sessions on *Why this answer?* at once, and integrated
gradients within their time budget.

A *walk* opens every page, one after another, in one browser, each by its address as a user
follows a link (a new session each time), on a text that is traced already: it times the first
chart, then waits until the page has filled in its heavy parts (no progress line left). The
*room* opens thirty sessions without a browser, each asking
*Why this answer?* about its own text, so thirty attributions compute at once; meanwhile a
browser walks some pages and a plain request checks that the server answers. (The sessions speak
Streamlit's protocol, so they live with the app's tools: ``explainer.ui.tools.sessions``.)
"""
from __future__ import annotations

import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlencode

from explainer.bench.rows import Row, median, timed
from explainer.registry import DEFAULT, slugs

TARGET_FIRST_CHART_S = 3.0
TARGET_ATTRIBUTION_S = 20.0
CHART = "[data-testid='stPlotlyChart']"
EXCEPTION = "[data-testid='stException']"
# A heavy part's place while it computes (its progress line inside); gone once the page has drawn the
# part, not merely when the line's last poll found it ready and started that page run.
PENDING_PART = "[class*='st-key-job-']"
ZH_ON_ENGLISH = "大型语言模型是如何工作的？苹果是红色的，猫和狗都是宠物。"   # 47 byte-level tokens on SmolLM2
# every page, both models, both languages, and a Chinese text on the English model
WALKS: dict[str, dict[str, str]] = {
    "smollm2-en": {"model": "smollm2-135m", "lang": "en"},
    "gemma-zh": {"model": "gemma-3-270m", "lang": "zh"},
    "smollm2-zh": {"model": "smollm2-135m", "lang": "zh"},
    "gemma-en": {"model": "gemma-3-270m", "lang": "en"},
    "smollm2-en-chinese-text": {"model": "smollm2-135m", "lang": "en", "prompt": ZH_ON_ENGLISH},
}
ROOM_TEXT = "The capital of {} is the city of"
ROOM_PLACES = ("France", "Germany", "Italy", "Spain", "Japan", "China", "Egypt", "Brazil", "Canada", "Mexico",
               "Peru", "Chile", "Kenya", "Norway", "Sweden", "Poland", "Greece", "Turkey", "India", "Russia",
               "Cuba", "Iran", "Iraq", "Ireland", "Portugal", "Austria", "Hungary", "Finland", "Denmark", "Belgium")


@dataclass(frozen=True)
class PageTime:
    """One page opened in the browser: seconds to its first chart and until it had filled in."""

    walk: str
    page: str
    first_chart: float | None
    settled: float | None          # no progress line left (None: still computing when we stopped waiting)
    error: str = ""


def url(base: str, slug: str, query: dict[str, Any]) -> str:
    """The address of ``slug`` with ``query``, as a link would carry it."""
    return f"{base.rstrip('/')}/{slug}" + (f"?{urlencode(query)}" if query else "")


def walk(browser: Any, base: str, name: str, query: dict[str, Any], pages: Sequence[str] = slugs(),
         settle_s: float = 120.0) -> list[PageTime]:
    """Open every page of ``pages`` after a first visit that traces the text; their timings."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        _open(page, url(base, DEFAULT.slug, query), 600.0, 0.0)               # model and trace ready
        return [PageTime(name, slug, *_open(page, url(base, slug, query), 60.0, settle_s)) for slug in pages]
    finally:
        context.close()


def _open(page: Any, address: str, chart_s: float, settle_s: float) -> tuple[float | None, float | None, str]:
    start = time.perf_counter()
    try:
        page.goto(address, wait_until="commit")
        page.wait_for_selector(f"{CHART}, {EXCEPTION}", timeout=chart_s * 1000)
        first = time.perf_counter() - start
        if page.query_selector(EXCEPTION) is not None:
            return None, None, page.locator(EXCEPTION).first.inner_text()[:300]
        if not settle_s:
            return first, None, ""
        page.wait_for_function(f"() => !document.querySelector(\"{PENDING_PART}\")", timeout=settle_s * 1000,
                               polling=250)
        return first, time.perf_counter() - start, ""
    except Exception as err:  # noqa: BLE001 - a timeout is a result here
        first = locals().get("first")
        return first, None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


@dataclass(frozen=True)
class RoomResult:
    """Thirty sessions on one page at once, and what another user saw meanwhile."""

    visits: list                    # explainer.ui.tools.sessions.Visit, one per session
    seconds: float
    others: list[PageTime]          # a browser walking other pages during the room
    answered: list[float]           # the server's health check, seconds per request meanwhile


def room_on_why(browser: Any, base: str, n: int = 30, others: Sequence[str] = ("attention", "tokens", "layers"),
                timeout: float = 900.0) -> RoomResult:
    """``n`` sessions open *Why this answer?*, each on its own text; meanwhile a browser opens
    ``others`` on the default (traced) text and the health check is asked every second."""
    from explainer.ui.tools.sessions import room

    queries = [{"prompt": ROOM_TEXT.format(place)} for place in (ROOM_PLACES * (n // len(ROOM_PLACES) + 1))[:n]]
    _open_page_in(browser, url(base, DEFAULT.slug, {}))                    # the default text traced
    found: dict[str, Any] = {}
    start = time.perf_counter()
    thread = threading.Thread(target=lambda: found.update(visits=room(base, "why", queries, timeout)))
    thread.start()
    time.sleep(10.0)                                                       # the room is computing now
    answered = []
    meanwhile = walk(browser, base, "during the room", {}, others, settle_s=0.0)
    while thread.is_alive():
        answered.append(_health(base))
        thread.join(1.0)
    return RoomResult(found.get("visits", []), time.perf_counter() - start, meanwhile, answered)


def _open_page_in(browser: Any, address: str) -> None:
    context = browser.new_context()
    try:
        _open(context.new_page(), address, 600.0, 0.0)
    finally:
        context.close()


def _health(base: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(base.rstrip("/") + "/_stcore/health", timeout=30) as r:
        r.read()
    return time.perf_counter() - start


# ------------------------------------------------------------------ §11 pages that never wait


def section_never_wait(quick: bool = False) -> list[Row]:
    """§11: every page's first chart in Chromium (every walk), thirty sessions on *Why this
    answer?* at once, and integrated gradients within their budget on a 64-token text."""
    from explainer.bench.app import CHROMIUM, CHROMIUM_ARGS, running_app

    rows = _attribution_rows(quick)
    if not CHROMIUM.exists():
        return rows + [Row(11, "browser walk", note="skipped: no chromium", skipped=True)]
    from playwright.sync_api import sync_playwright

    walks = {"smollm2-en": WALKS["smollm2-en"]} if quick else WALKS
    with running_app() as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            rows += [_walk_row(name, walk(browser, base, name, query)) for name, query in walks.items()]
        finally:
            browser.close()
    with running_app() as base, sync_playwright() as p:                 # a fresh server: nothing scored yet
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            rows += _room_rows(room_on_why(browser, base, n=10 if quick else 30))
        finally:
            browser.close()
    return rows


def _walk_row(name: str, times: list[PageTime]) -> Row:
    firsts = [t.first_chart for t in times if t.first_chart is not None]
    slowest = max(times, key=lambda t: t.first_chart or float("inf"))
    why = next((t for t in times if t.page == "why"), None)
    note = (f"median {median(firsts):.2f} s, slowest: {slowest.page}" if firsts else "no chart")
    if why is not None and why.settled is not None:
        note += f"; Why this answer? filled in after {why.settled:.1f} s"
    errors = [f"{t.page}: {t.error}" for t in times if t.error]
    return Row(11, f"first chart of every page on a traced text, {name} (slowest of {len(times)})",
               slowest.first_chart, "s", TARGET_FIRST_CHART_S, note=note + (f"; {errors[0]}" if errors else ""),
               error=bool(errors) and not firsts)


def _room_rows(result: RoomResult) -> list[Row]:
    n = len(result.visits)
    done = [v.done for v in result.visits if v.done is not None]
    broken = sum(bool(v.exceptions) for v in result.visits)
    others = [t.first_chart for t in result.others if t.first_chart is not None]
    return [
        Row(11, f"{n} sessions on Why this answer? at once (own texts): the last one filled in",
            max(done) if len(done) == n else None, "s", note=f"{len(done)}/{n} done, {broken} with an error"),
        Row(11, "… meanwhile another user's first chart (Attention, Tokens, Layers; slowest)",
            max(others) if len(others) == len(result.others) else None, "s", TARGET_FIRST_CHART_S),
        Row(11, "… meanwhile the server's health check (slowest answer)",
            max(result.answered) if result.answered else None, "s"),
    ]


def _attribution_rows(quick: bool) -> list[Row]:
    """Integrated gradients with the page's budget: a 64-token text, and the 47-token Chinese sentence."""
    import explainer
    from explainer.analysis import attribution_inputs as ai

    model = explainer.load_model()
    texts = {"64 tokens": _text_of(model, 64), "the 47-token Chinese sentence": ZH_ON_ENGLISH}
    rows = []
    for label, text in list(texts.items())[: 1 if quick else 2]:
        ai.forget(model)
        seconds, r = timed(lambda: ai.input_attribution(model, text))
        rows.append(Row(11, f"integrated gradients, SmolLM2, {label}: time to the scores", seconds, "s",
                        TARGET_ATTRIBUTION_S, note=f"{r.steps} points, {r.completeness_error:.1%} off "
                                                   f"(stopped: {r.stopped}; the page flags > 5 %)"))
    return rows


def _text_of(model: Any, n: int) -> str:
    """An English text of exactly ``n`` tokens for ``model``."""
    import explainer

    words = ("The capital of France is Paris and the capital of Germany is Berlin, while the capital of Italy "
             "is Rome and the capital of Spain is Madrid. " * 8).split()
    for k in range(len(words), 0, -1):
        text = " ".join(words[:k])
        if len(explainer.tokenize(model, text, 4 * n)[0]) <= n:
            return text
    return words[0]
