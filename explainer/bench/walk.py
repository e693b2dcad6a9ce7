"""Pages that never wait, measured: every page in Chromium timed to its first chart, and a room of
sessions on *Why this answer?* at once (section 11; the browser tests use the same code).

A *walk* opens every page, one after another, in one browser, each by its address as a user
follows a link (a new session each time), on a text that is traced already: it times the first
chart, then waits until the page has filled in its heavy parts (no progress line left). The
*room* opens thirty sessions without a browser (:mod:`explainer.bench.sessions`), each asking
*Why this answer?* about its own text, so thirty attributions compute at once; meanwhile a
browser walks some pages and a plain request checks that the server answers.
"""
from __future__ import annotations

import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlencode

from explainer.bench.sessions import Visit, room
from explainer.registry import DEFAULT, slugs

TARGET_FIRST_CHART_S = 3.0
CHART = "[data-testid='stPlotlyChart']"
EXCEPTION = "[data-testid='stException']"
PROGRESS = "[class*='st-key-job-'] [data-testid='stProgress']"     # a heavy part's progress line
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
        page.wait_for_function(f"() => !document.querySelector(\"{PROGRESS}\")", timeout=settle_s * 1000,
                               polling=250)
        return first, time.perf_counter() - start, ""
    except Exception as err:  # noqa: BLE001 - a timeout is a result here
        first = locals().get("first")
        return first, None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


@dataclass(frozen=True)
class RoomResult:
    """Thirty sessions on one page at once, and what another user saw meanwhile."""

    visits: list[Visit]
    seconds: float
    others: list[PageTime]          # a browser walking other pages during the room
    answered: list[float]           # the server's health check, seconds per request meanwhile


def room_on_why(browser: Any, base: str, n: int = 30, others: Sequence[str] = ("attention", "tokens", "layers"),
                timeout: float = 900.0) -> RoomResult:
    """``n`` sessions open *Why this answer?*, each on its own text; meanwhile a browser opens
    ``others`` on the default (traced) text and the health check is asked every second."""
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
