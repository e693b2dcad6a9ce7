"""Presenter mode at projector size (1280 × 720) and the tour's keys, in Chromium.

Measured in the browser: the sidebar's visible width, the top of each page's first chart, the
font size and colour of every axis, legend and colour-bar text, the hover label, Streamlit's
chrome, and what leaving presenter mode gives back.
"""
from __future__ import annotations

import re
import time
import uuid

import pytest

from explainer.text import texts
from explainer.ui.frame.params import DEFAULT_PROMPT_ZH
from tests.e2e.conftest import (SIDEBAR, app_pages, assert_no_exception, open_app, rerun, start_server,
                                stop_server, url_for, wait_idle)
from tests.e2e.stage_tools import (FOLD_PX, MIN_TEXT_PX, measure, projector_page, settle, share_dialog, shot,
                                   tour_label)

pytestmark = pytest.mark.slow
SLUGS = [slug for _, slug in app_pages()]
# A view with something to draw on every page: Intervene shows its chart once a head is off.
VIEW = {"presenter": 1, "off": "0.0"}


@pytest.fixture(scope="module")
def stage_server():
    """The app with Streamlit's viewer toolbar on, so hiding the main menu can be seen to work."""
    srv = start_server("e2e-stage-presenter.log", extra_args=("--client.toolbarMode", "viewer"))
    yield srv
    stop_server(srv)


@pytest.fixture
def proj(browser):
    """A fresh session in a 1280 × 720 window."""
    page = projector_page(browser)
    yield page
    page.context.close()


def _snippet(page_slug: str, lang: str) -> str:
    """A plain run of words from the start of the page's intro (what a folded intro must not show)."""
    intro = re.sub(r"[*_`#>\[\]]", "", texts(page_slug, lang)["intro"]).strip()
    return intro[:24]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("slug", SLUGS)
def test_presenter_mode_fits_a_projector(proj, stage_server, slug, lang):
    page = proj
    query = {**VIEW, "lang": lang} | ({"prompt": DEFAULT_PROMPT_ZH} if lang == "zh" else {})
    open_app(page, stage_server, slug, query)
    settle(page)
    m = measure(page)
    print(f"\n{slug}/{lang}: sidebar {m['sidebarVisible']:.0f} px, expand {m['expand']}, first chart at "
          f"y={m['chartTop']:.0f}, smallest chart text {m['minText']} px ({m['nTexts']} texts), h1 {m['h1']} px")
    shot(page, f"presenter-{slug}-{lang}")
    assert m["sidebarVisible"] == 0, "the sidebar should be folded away"
    assert m["expand"] and m["expand"]["width"] <= 48 and m["expand"]["height"] <= 48, m["expand"]
    assert m["expand"]["x"] < 40 and m["expand"]["y"] < 40, "the › control sits at the top left"
    assert m["chartTop"] is not None and m["chartTop"] < FOLD_PX, f"first chart starts at {m['chartTop']}"
    assert m["minText"] >= MIN_TEXT_PX, m
    assert m["tickFills"] == ["rgb(0, 0, 0)"], m["tickFills"]
    assert m["openDetails"] == 0, "explanations should be folded"
    snippet = _snippet(slug, lang)
    hits = page.locator("[data-testid='stMain']").get_by_text(snippet, exact=False)
    assert not any(hits.nth(i).is_visible() for i in range(hits.count())), f"intro visible: {snippet!r}"
    assert_no_exception(page)


def test_hover_text_is_large(proj, stage_server):
    page = proj
    open_app(page, stage_server, "attention", VIEW)
    settle(page)
    drag = page.locator("[data-testid='stMain'] .js-plotly-plot .nsewdrag").first
    box = drag.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.9)
    page.wait_for_selector(".hoverlayer .hovertext text", timeout=10_000)
    sizes = page.evaluate("[...document.querySelectorAll('.hoverlayer .hovertext text')]"
                          ".map(e => parseFloat(getComputedStyle(e).fontSize))")
    print(f"\nhover label font sizes: {sizes}")
    assert sizes and min(sizes) >= MIN_TEXT_PX


def _slow_rerun(page) -> int:
    """Trace a text never seen before (a run of a second or more); how long the status widget showed."""
    page.evaluate("window.__statusSeen = 0")
    box = page.locator(f"{SIDEBAR} textarea").first
    words = " ".join(f"w{uuid.uuid4().hex[:6]}" for _ in range(150))
    rerun(page, lambda: (box.fill(words), box.press("Control+Enter")))
    settle(page, 0.3)
    return page.evaluate("window.__statusSeen")


def test_presenter_on_and_off_from_the_sidebar(proj, stage_server):
    """Normal mode (positive controls), presenter mode switched on in the sidebar, then off again."""
    page = proj
    toggle = page.locator(f"{SIDEBAR} label").filter(has_text=texts("common", "en")["presenter"]).first
    open_app(page, stage_server, "attention")
    settle(page)
    assert _slow_rerun(page) > 0, "positive control: the running status shows during a long run"
    before = measure(page)
    assert before["sidebarVisible"] >= 250 and before["mainMenu"] and before["header"]["height"] >= 40, before
    assert before["minText"] < MIN_TEXT_PX, "positive control: normal charts use smaller type"

    rerun(page, toggle.click)                                 # on: the sidebar folds away at once
    page.wait_for_function("() => document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().right <= 0")
    settle(page)
    m = measure(page)
    assert "presenter=1" in page.url and m["sidebarVisible"] == 0
    assert not m["mainMenu"] and m["header"]["height"] == 0, m
    assert m["h1"] >= before["h1"] and m["padTop"] < 20 < 60 < before["padTop"], "a large title, no blank band above"
    assert m["minText"] >= MIN_TEXT_PX and m["openDetails"] == 0

    page.locator("[data-testid='stExpandSidebarButton']").click()      # the one small control brings it back
    page.wait_for_function("() => document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().right > 250")
    assert _slow_rerun(page) == 0, "the running status showed in presenter mode"
    rerun(page, toggle.click)                                 # off: everything as it was
    settle(page)
    after = measure(page)
    print(f"\nnormal {before}\npresenter {m}\nleft presenter {after}")
    assert "presenter" not in page.url
    assert after["sidebarVisible"] >= 250 and after["mainMenu"] and after["header"]["height"] >= 40, after
    assert (after["h1"], after["h1Top"], after["padTop"]) == (before["h1"], before["h1Top"], before["padTop"])
    assert after["minText"] == before["minText"]
    assert after["tickFills"] == before["tickFills"]
    intro = page.locator("[data-testid='stMain']").get_by_text(_snippet("attention", "en"))
    assert intro.first.is_visible(), "the intro is back"
    assert_no_exception(page)


def _press(page, key: str, step: int | None) -> None:
    """Press ``key`` on the page (nothing focused) and wait until the tour is at ``step`` (None: ended)."""
    page.keyboard.press(key)
    wanted = "!location.search.includes('tour=')" if step is None else f"location.search.includes('tour={step}')"
    page.wait_for_function(f"() => {wanted} && window.__state === 'notRunning'")
    settle(page, 0.5)


def test_keys_step_the_tour_and_every_step_fits(proj, stage_server):
    page = proj
    open_app(page, stage_server, "overview", {"presenter": 1, "tour": 0})
    settle(page)
    first = tour_label(page)
    n = int(first.split("/")[1])
    assert first.endswith(f"1/{n}")
    tops = {}
    for i in range(2, n + 1):                         # no click into the page first: keys only
        _press(page, "ArrowRight" if i % 2 else "PageDown", i - 1)
        assert tour_label(page).endswith(f"{i}/{n}"), (i, tour_label(page))
        m = measure(page)
        slug = page.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        tops[f"{i}:{slug}"] = round(m["chartTop"]) if m["chartTop"] is not None else None
        assert m["chartTop"] is not None and m["chartTop"] < FOLD_PX, (i, page.url, m["chartTop"])
    print(f"\nfirst chart top per tour step (banner on): {tops}")
    _press(page, "ArrowLeft", n - 2)
    assert tour_label(page).endswith(f"{n - 1}/{n}")
    _press(page, "PageUp", n - 3)
    assert tour_label(page).endswith(f"{n - 2}/{n}")
    runs = page.evaluate("window.__runs")
    time.sleep(2)
    assert page.evaluate("window.__runs") == runs, "a key must not start a chain of reruns"
    _press(page, "Escape", None)
    assert tour_label(page) == ""
    assert_no_exception(page)


def test_keys_leave_text_boxes_and_sliders_alone(proj, stage_server):
    page = proj
    open_app(page, stage_server, "attention", {"tour": 4})
    settle(page)
    label = tour_label(page)
    box = page.locator(f"{SIDEBAR} textarea").first
    box.click()
    runs = page.evaluate("window.__runs")
    for key in ("ArrowRight", "PageDown", "ArrowLeft", "Escape"):
        box.press(key)
    time.sleep(1.5)
    assert page.evaluate("window.__runs") == runs and tour_label(page) == label, "keys in a text box step the tour"
    thumb = page.locator("[data-testid='stMain'] [data-testid='stSlider'] input[type='range']").first
    start = int(thumb.input_value())
    rerun(page, lambda: (thumb.focus(), thumb.press("ArrowRight")))
    settle(page, 0.3)
    assert int(thumb.input_value()) == start + 1 and tour_label(page) == label
    assert page.evaluate("window.__llmExplainerKeyPresses || 0") == 0
    share_dialog(page)                                   # Esc closes a dialog, not the tour
    page.keyboard.press("Escape")
    page.wait_for_selector("[role='dialog']", state="detached")
    assert tour_label(page) == label and "tour=4" in page.url
    page.locator("h1").first.click()                     # back on the page: keys step again
    _press(page, "ArrowRight", 5)
    assert tour_label(page) != label
    wait_idle(page)


def test_keys_do_nothing_without_a_tour(proj, stage_server):
    page = proj
    page.goto(url_for(stage_server, "attention"))
    settle(page)
    runs = page.evaluate("window.__runs")
    for key in ("ArrowRight", "PageDown", "Escape"):
        page.keyboard.press(key)
    time.sleep(1.5)
    assert page.evaluate("window.__runs") == runs
    assert page.evaluate("window.__llmExplainerKeys") is True, "the key listener should be installed"
