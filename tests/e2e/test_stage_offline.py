"""A dropped connection loses nothing (hall Wi-Fi), in Chromium at 1280 × 720.

Going offline in Chromium does not by itself close an open WebSocket, so the tests route the
app's socket through Playwright and close it while the context is offline, as a dead access
point would: Streamlit sees the connection go, its health pings fail until the network returns,
then it reconnects. Two cases: the server kept the session (a short drop), and the server lost
it (restarted meanwhile) — then the browser's URL alone must rebuild the view.
"""
from __future__ import annotations

import re
import time

import pytest

from explainer.text import texts
from tests.e2e.conftest import (assert_no_exception, has_cjk, open_app, rerun, sidebar_prompt, start_server, stop_server,
                                title_text)
from tests.e2e.stage_tools import (FOLD_PX, connection_state, main_slider, measure, projector_page, settle, shot,
                                   tour_label)

pytestmark = pytest.mark.slow
ZH = texts("common", "zh")
LONG_ZH = ("猫和狗都是动物。猫喜欢鱼，狗喜欢骨头。" * 230)[:4_400]          # too long for a URL


class DroppableSocket:
    """Routes the app's WebSocket through Playwright so a test can cut it."""

    def __init__(self, page) -> None:
        self.routes: list = []
        page.route_web_socket(re.compile(r".*/_stcore/stream"), self._connect)

    def _connect(self, ws) -> None:
        ws.connect_to_server()
        self.routes.append(ws)

    def cut(self) -> None:
        for ws in self.routes:
            ws.close(code=4000, reason="network gone")


def _view(page) -> dict:
    return {"title": title_text(page), "layer": main_slider(page, ZH["layer"]).input_value(),
            "head": main_slider(page, ZH["head"]).input_value(), "prompt": sidebar_prompt(page).input_value(),
            "tour": tour_label(page), "sidebar": measure(page)["sidebarVisible"],
            "query": page.url.split("?", 1)[1] if "?" in page.url else ""}


def _drop(page, socket: DroppableSocket) -> None:
    page.context.set_offline(True)
    socket.cut()
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                           ".getAttribute('data-test-connection-state') !== 'CONNECTED'", timeout=20_000)


def _come_back(page, runs_before: int | None = None) -> None:
    page.context.set_offline(False)
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                           ".getAttribute('data-test-connection-state') === 'CONNECTED'", timeout=90_000)
    if runs_before is not None:                      # a new session: wait for its first run
        page.wait_for_function(f"() => window.__runs > {runs_before} && window.__state === 'notRunning'",
                               timeout=120_000)
    settle(page, 1.0)


def _set_up_view(page, srv) -> None:
    """A speaker's view: Chinese, presenter mode, the tour, a layer from the link, a head moved by hand."""
    open_app(page, srv, "attention", {"lang": "zh", "presenter": 1, "tour": 4, "layer": 6})
    settle(page, 1.0)
    thumb = main_slider(page, ZH["head"])
    rerun(page, lambda: (thumb.focus(), thumb.press("ArrowRight")))
    settle(page, 0.5)


def test_a_short_drop_comes_back_to_the_same_view(browser):
    srv = start_server("e2e-stage-drop.log")
    page = projector_page(browser)
    try:
        socket = DroppableSocket(page)
        _set_up_view(page, srv)
        before = _view(page)
        _drop(page, socket)
        time.sleep(3)
        assert connection_state(page) != "CONNECTED", "offline: the app cannot be connected"
        _come_back(page)
        after = _view(page)
        print(f"\nbefore {before}\nafter  {after}")
        assert after == before and before["head"] == "1" and before["layer"] == "6"
        assert len(socket.routes) >= 2, "the app should have opened a new connection"
        assert page.evaluate("window.__llmExplainerResyncs") == 1, "one redraw after the connection came back"
        assert_no_exception(page)
    finally:
        page.context.close()
        stop_server(srv)


def test_a_server_restart_while_offline_restores_the_view_from_the_url(browser):
    srv = start_server("e2e-stage-restart-1.log")
    port = int(srv.url.rsplit(":", 1)[1])
    page = projector_page(browser)
    try:
        socket = DroppableSocket(page)
        _set_up_view(page, srv)
        box = sidebar_prompt(page)
        page.locator("[data-testid='stExpandSidebarButton']").click()
        rerun(page, lambda: (box.fill(LONG_ZH), box.press("Control+Enter")))
        page.wait_for_function("() => location.search.includes('prompt_ref=')")
        page.locator("[data-testid='stSidebarCollapseButton'] button").click()
        settle(page, 0.5)
        before = _view(page)
        assert before["prompt"] == LONG_ZH and before["sidebar"] == 0

        _drop(page, socket)
        stop_server(srv)                                     # the session is gone with the server
        srv = start_server("e2e-stage-restart-2.log", port=port)
        runs = page.evaluate("window.__runs")
        _come_back(page, runs_before=runs)
        after = _view(page)
        print(f"\nbefore {dict(before, prompt=len(before['prompt']))}\nafter  {dict(after, prompt=len(after['prompt']))}")
        shot(page, "restart-restored")
        assert has_cjk(after["title"]) and after == before
        assert page.evaluate("window.__llmExplainerResyncs") == 1
        assert measure(page)["chartTop"] < FOLD_PX
        assert_no_exception(page)
    finally:
        page.context.close()
        stop_server(srv)
