"""Every page of the app, in a real browser, in English and Chinese."""
from __future__ import annotations

import pytest

from explainer.text import texts
from tests.e2e.conftest import (ALERT, CHART, SCREENSHOTS, app_pages, assert_no_exception, has_cjk, is_stub, new_page,
                                open_app, page_params, start_server, stop_server, title_text, url_for, wait_idle)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("slug", page_params())
def test_page_renders_with_charts(browser, server, slug, lang):
    """Each page shows its charts with no exception; a screenshot of it is kept for review."""
    file = dict((s, f) for f, s in app_pages())[slug]
    page = new_page(browser, viewport={"width": 1400, "height": 1800})
    try:
        query = {"lang": lang} if lang != "en" else None
        if is_stub(file):
            page.goto(url_for(server, slug, query))
            wait_idle(page)
        else:
            open_app(page, server, slug, query, expect="any")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{slug}-{lang}.png"))
        assert_no_exception(page)
        dialogs = page.locator("[data-testid='stDialog']").all_inner_texts()
        assert not [d for d in dialogs if "not found" in d.lower()], f"/{slug} is not a valid link: {dialogs}"
        if is_stub(file):
            pytest.skip(f"{file} is still a stub (screenshot kept)")
        # a page either shows charts, or (like intervene before anything is switched off) says what to do
        assert page.locator(CHART).count() >= 1 or page.locator("[data-testid='stMain'] " + ALERT).count()
        title = title_text(page)
        assert has_cjk(title) == (lang == "zh"), f"title {title!r} is not in {lang}"
        # Markdown the page wrote (not chart text: a token may really be "___")
        shown = "\n".join(page.locator("[data-testid='stMain'] [data-testid='stMarkdownContainer']").all_inner_texts())
        assert "**" not in shown and "__" not in shown, f"/{slug} ({lang}) shows raw Markdown"
        assert_no_exception(page)
    finally:
        page.context.close()


def test_the_root_opens_the_overview_too(browser, server):
    """``/`` opens the default page (the Overview), which also answers at ``/overview`` (tested above)."""
    page = new_page(browser)
    try:
        page.goto(server.url + "/?lang=zh")
        wait_idle(page)
        page.wait_for_selector(CHART, timeout=30_000)
        assert_no_exception(page)
        assert title_text(page) == texts("overview", "zh")["title"]
        dialogs = page.locator("[data-testid='stDialog']").all_inner_texts()
        assert not [d for d in dialogs if "not found" in d.lower()], dialogs
    finally:
        page.context.close()


def test_a_deep_link_as_first_visit_uses_the_apps_navigation(browser):
    """On a fresh server, the first visitor follows a link to /tokens (not /).

    Streamlit treats a ``pages/`` folder next to the entry file as old-style multipage
    ("MPA v1") until ``st.navigation`` has run once; a first request for /tokens then runs
    pages/tokens.py alone: file names in the menu, an extra "app" entry, no wide layout.
    """
    srv = start_server("e2e-fresh-server.log")
    page = new_page(browser)
    try:
        open_app(page, srv, "tokens")
        nav = [t.strip() for t in page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()]
        print("\nmenu on first visit:", nav)
        titles = [texts(slug, "en")["menu"] for _, slug in app_pages()]
        assert "app" not in nav, f"the menu lists the entry file itself: {nav}"
        assert set(titles) <= {n.split("\n")[-1].strip() for n in nav} or all(
            any(t in n for n in nav) for t in titles), f"menu {nav} is not the app's pages {titles}"
    finally:
        page.context.close()
        stop_server(srv)
