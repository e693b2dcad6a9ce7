"""Many browser sessions on one server: each sees its own text; sessions do not leak memory."""
from __future__ import annotations

import gc
import time

import pytest

from tests.e2e.conftest import CHART, assert_no_exception, new_page, open_app, url_for, wait_idle

pytestmark = pytest.mark.slow
WORDS = ["giraffe", "volcano", "harbour", "lantern", "quartz"]


def test_concurrent_sessions_each_see_their_own_prompt(browser, server):
    pages = [new_page(browser) for _ in WORDS]
    try:
        t0 = time.perf_counter()
        for page, word in zip(pages, WORDS):         # all five load at the same time
            page.goto(url_for(server, "tokens", {"prompt": f"The {word} is here"}), wait_until="commit")
        for page, word in zip(pages, WORDS):
            wait_idle(page)
            page.wait_for_selector(CHART)
            assert_no_exception(page)
            chips = page.locator("[data-testid='stHtml']").first.inner_text()
            assert word in chips, (word, chips)
            assert not [w for w in WORDS if w != word and w in chips], (word, chips)
        print(f"\n{len(pages)} concurrent sessions all rendered in {time.perf_counter() - t0:.1f} s")
    finally:
        for page in pages:
            page.context.close()


def test_many_sessions_do_not_grow_memory(browser, server):
    """50 sessions open a page and close; the server's RSS stays bounded."""
    def sessions(first: int, n: int = 5) -> None:
        """``n`` users at once: new context, open a page, close."""
        pages = [new_page(browser) for _ in range(n)]
        try:
            for k, page in enumerate(pages):
                page.goto(url_for(server, "tokens", {"prompt": f"Session number {(first + k) % 7} says hello"}),
                          wait_until="commit")
            for page in pages:
                wait_idle(page)
                page.wait_for_selector(CHART)
                assert_no_exception(page)
        finally:
            for page in pages:
                page.context.close()

    sessions(0)                                      # warm-up: model, caches, first traces
    gc.collect()
    before = server.rss()
    t0 = time.perf_counter()
    for first in range(0, 50, 5):
        sessions(first)
    time.sleep(2)
    after = server.rss()
    growth = (after - before) / 2**20
    print(f"\nserver RSS before {before / 2**20:.0f} MB, after 50 sessions {after / 2**20:.0f} MB "
          f"(growth {growth:+.0f} MB) in {time.perf_counter() - t0:.0f} s")
    assert growth < 300
