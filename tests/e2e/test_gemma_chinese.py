"""Every page as a Chinese-reading user sees it: 中文, the multilingual Gemma 3, the Chinese prompt.

In Chromium at two screen sizes (1440×900 and 1280×720): no exception box, no unrendered Markdown
(literal ``**``), the title in Chinese, and on the pages that show Gemma's new parts, those parts.
Screenshots of each page, one per screenful from the top down, are kept in artifacts/screenshots
for review by eye.
"""
from __future__ import annotations

import pytest

from tests.app.conftest import ZH_PROMPT
from tests.e2e.conftest import (CHART, SCREENSHOTS, assert_no_exception, has_cjk, new_page, open_app, page_params,
                                title_text)

pytestmark = pytest.mark.slow

QUERY = {"lang": "zh", "model": "gemma-3-270m", "prompt": ZH_PROMPT}
MAX_SHOTS = 8
# The element the app scrolls in (Streamlit scrolls a container, not the document); to = -1 only measures.
SCROLL = """(to) => {
  const e = [...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], section')]
    .find(e => e.scrollHeight > e.clientHeight + 4 && getComputedStyle(e).overflowY !== 'visible');
  if (!e) return [0, 1];
  if (to >= 0) e.scrollTo(0, to * e.clientHeight);
  return [e.scrollHeight, e.clientHeight];
}"""
VIEWPORTS = {"1440x900": {"width": 1440, "height": 900}, "1280x720": {"width": 1280, "height": 720}}
# What must be on a page (its main column's text) for Gemma's new parts to count as shown.
EXPECTED = {"attention": ("局部层", "全局", "query_pre_attn_scalar"), "position": ("10,000", "1,000,000"),
            "mlp": ("GeGLU",), "overview": ("GeGLU", "512"), "next_token": ("柏",), "tokens": ("法国", "巴黎")}


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("slug", page_params())
def test_page_in_chinese_with_gemma(browser, server, slug, viewport):
    page = new_page(browser, viewport=VIEWPORTS[viewport])
    try:
        open_app(page, server, slug, QUERY, expect="any")
        if page.locator(CHART).count():
            page.wait_for_timeout(800)                       # let plotly finish drawing before the picture
        screenshots(page, f"gemma-zh-{slug}-{viewport}")
        assert_no_exception(page)
        title = title_text(page)
        assert has_cjk(title), f"title {title!r} is not in Chinese"
        shown = page.locator("[data-testid='stMain']").inner_text()
        assert "**" not in shown, f"/{slug} shows raw Markdown"
        for words in EXPECTED.get(slug, ()):
            assert words in shown, f"/{slug} does not show {words!r}"
    finally:
        page.context.close()


def screenshots(page, name: str) -> None:
    """One picture per screenful, scrolling the app's own scroll container: NAME-1.png, NAME-2.png, …"""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob(f"{name}-*.png"):
        old.unlink()
    height, client = page.evaluate(SCROLL, -1)
    shots = min(MAX_SHOTS, max(1, -(-height // max(client, 1))))
    for k in range(shots):
        page.evaluate(SCROLL, k)
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{k + 1}.png"))
