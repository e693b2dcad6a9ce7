"""What users do in the browser: type, switch language, move view controls, follow links,
present, export, train."""
from __future__ import annotations

import re
import time
import uuid

import pytest

from explainer.text import texts
from tests.e2e.conftest import (ALERT, CHART, SIDEBAR, app_pages, assert_no_exception, has_cjk, is_stub,
                                new_page, open_app, rerun, sidebar_prompt, title_text, wait_idle)

pytestmark = pytest.mark.slow
PAGE_FILES = {slug: file for file, slug in app_pages()}
EN, ZH = texts("common", "en"), texts("common", "zh")


def need(slug: str) -> None:
    if slug not in PAGE_FILES or is_stub(PAGE_FILES[slug]):
        pytest.fail(f"the {slug} page is missing or a stub")


def metric(page, i: int = 0) -> str:
    return page.locator("[data-testid='stMetricValue']").nth(i).inner_text().strip()


def widget_value(page, label: str) -> str:
    """The value a slider or select box labelled ``label`` shows."""
    widget = page.locator("[data-testid='stSlider'], [data-testid='stSelectbox']").filter(
        has=page.locator("[data-testid='stWidgetLabel']", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
    assert widget.count() >= 1, f"no slider or select box labelled {label!r}"
    thumb = widget.first.locator("input[type='range']")
    if thumb.count():
        return thumb.first.input_value()
    return widget.first.locator("[data-baseweb='select']").inner_text().strip()


def test_typing_a_prompt_updates_the_charts(page, server):
    open_app(page, server, "tokens")
    before = int(metric(page))
    box = sidebar_prompt(page)
    rerun(page, lambda: (box.fill("one two three four five six seven eight nine ten eleven twelve "
                                  "thirteen fourteen fifteen sixteen"), box.press("Control+Enter")))
    page.wait_for_selector(CHART)
    after = int(metric(page))
    assert after != before and after >= 16
    assert "sixteen" in page.locator("[data-testid='stHtml']").first.inner_text()
    # blur (clicking elsewhere) applies the text as well
    rerun(page, lambda: (box.fill("Hello"), page.locator("h1").first.click()))
    assert int(metric(page)) < after
    assert_no_exception(page)


def test_switching_language_shows_chinese(page, server):
    open_app(page, server, "tokens")
    assert not has_cjk(title_text(page))
    rerun(page, lambda: page.locator(f"{SIDEBAR} [data-testid='stRadio'] label", has_text="简体中文").click())
    page.wait_for_selector(CHART)
    assert has_cjk(title_text(page))
    sidebar_text = page.locator(SIDEBAR).inner_text()
    assert ZH["prompt"] in sidebar_text, "the sidebar labels did not follow the language switch"
    assert "lang=zh" in page.url
    assert_no_exception(page)


def test_moving_a_view_control_does_not_rerun_the_model(page, server):
    """Positive control: a new prompt shows the tracing spinner. Then moving the layer
    slider reruns the page but shows no tracing spinner: the cached trace was reused."""
    need("attention")
    words = " ".join(f"w{uuid.uuid4().hex[:6]}" for _ in range(120))      # ~500 tokens, never seen before
    open_app(page, server, "attention", {"prompt": words, "max_tokens": 512})
    traced = [s for s in page.evaluate("window.__spinners") if EN["tracing"].rstrip("…") in s]
    assert traced, "the first visit should have run the model (positive control)"
    page.evaluate("window.__spinners = []")
    thumb = page.locator("[data-testid='stSlider']").filter(has_text=EN["layer"]).locator("input[type='range']").first
    start = int(thumb.input_value())
    t0 = time.perf_counter()
    rerun(page, lambda: (thumb.focus(), thumb.press("ArrowRight")))
    print(f"\nlayer slider rerun took {time.perf_counter() - t0:.2f} s")
    assert int(thumb.input_value()) == start + 1
    assert f"layer={start + 1}" in page.url
    spinners = page.evaluate("window.__spinners")
    assert not [s for s in spinners if EN["tracing"].rstrip("…") in s], spinners
    page.wait_for_selector(CHART)
    assert_no_exception(page)


def test_deep_link_restores_the_view(page, server):
    need("attention")
    open_app(page, server, "attention", "layer=3&head=2&lang=zh")
    assert has_cjk(title_text(page))
    assert widget_value(page, ZH["layer"]) == "3"
    assert widget_value(page, ZH["head"]) == "2"
    assert "layer=3" in page.url and "head=2" in page.url and "lang=zh" in page.url


def test_presenter_mode_uses_larger_type(browser, server):
    sizes = {}
    for presenter in (False, True):
        page = new_page(browser)
        try:
            open_app(page, server, "tokens", {"presenter": 1} if presenter else None)
            sizes[presenter] = page.evaluate(
                "() => [getComputedStyle(document.documentElement).fontSize,"
                " getComputedStyle(document.querySelector('h1')).fontSize].map(parseFloat)")
            assert page.locator(f"{SIDEBAR} [role='switch'], {SIDEBAR} input[type='checkbox']").first.is_checked() \
                == presenter
        finally:
            page.context.close()
    print(f"\nfont sizes (html, h1) normal {sizes[False]} presenter {sizes[True]}")
    assert sizes[True][0] > sizes[False][0]
    assert sizes[True][1] > sizes[False][1]


def test_data_download_delivers_a_file(page, server, tmp_path):
    open_app(page, server, "tokens")
    button = page.locator("[data-testid='stMain'] [data-testid='stDownloadButton'] button").first
    with page.expect_download() as info:
        button.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    text = path.read_text(encoding="utf-8")
    assert path.suffix == ".csv" and text.startswith("index,token,id")
    assert "Paris" in text and len(text.splitlines()) > 5


def test_chart_png_export_delivers_an_image(page, server, tmp_path):
    open_app(page, server, "tokens")
    chart = page.locator(CHART).first
    chart.hover()
    button = chart.locator(".modebar-btn[data-title*='png' i], .modebar-btn[data-title*='download' i]").first
    with page.expect_download() as info:
        button.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, (path.name, data[:16])


def test_every_page_download_buttons_deliver_files(browser, server, tmp_path):
    """Each landed page's data downloads (CSV/JSON) are non-empty files."""
    checked = []
    for file, slug in app_pages():
        if is_stub(file):
            continue
        page = new_page(browser)
        try:
            open_app(page, server, slug, expect="any")
            buttons = page.locator("[data-testid='stMain'] [data-testid='stDownloadButton'] button")
            usable = [buttons.nth(i) for i in range(buttons.count())
                      if not buttons.nth(i).evaluate("b => !!b.closest('[inert]')")]   # not in a closed expander
            for button in usable[:3]:
                with page.expect_download() as info:
                    button.click()
                path = tmp_path / f"{slug}-{info.value.suggested_filename}"
                info.value.save_as(path)
                assert path.stat().st_size > 20, path
                checked.append(path.name)
        finally:
            page.context.close()
    print("\ndownloads checked:", checked)
    assert checked


def test_learning_page_trains(page, server):
    need("learning")
    open_app(page, server, "learning", expect="any")
    charts_before = page.locator(CHART).count()
    start = page.locator("[data-testid='stMain'] button").filter(
        has_text=re.compile(r"train|start|run|训练|开始", re.I)).first
    rerun(page, start.click, timeout=300_000)
    page.wait_for_selector(CHART, timeout=60_000)
    assert page.locator(CHART).count() >= max(charts_before, 1)
    assert re.search(r"loss|损失", page.locator("[data-testid='stMain']").inner_text(), re.I)
    assert_no_exception(page)
