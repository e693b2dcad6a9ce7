"""Every page of the app, in a real browser, in English and Chinese."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import (CHART, SCREENSHOTS, app_pages, assert_no_exception, has_cjk, is_stub,
                                new_page, open_app, page_params, title_text)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("slug", page_params())
def test_page_renders_with_charts(browser, server, slug, lang):
    """Each page shows its charts with no exception; a screenshot of it is kept for review."""
    file = dict((s, f) for f, s in app_pages())[slug]
    page = new_page(browser, viewport={"width": 1400, "height": 1800})
    try:
        query = {"lang": lang} if lang != "en" else None
        open_app(page, server, slug, query, expect="any" if is_stub(file) else "chart")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{slug}-{lang}.png"))
        if is_stub(file):
            pytest.skip(f"{file} is still a stub (screenshot kept)")
        assert page.locator(CHART).count() >= 1
        title = title_text(page)
        assert has_cjk(title) == (lang == "zh"), f"title {title!r} is not in {lang}"
        assert_no_exception(page)
    finally:
        page.context.close()
