"""Sharing with the room and surviving a dropped connection, in Chromium at 1280 × 720.

The QR code is decoded from a screenshot with zbarimg and opened in a second browser context
(a second user). "The host the browser used" is tested with a name only the browser knows
(Chromium maps ``classroom.test`` to this machine), so the link can only have it from the browser.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from explainer.shortlinks import KEY_CHARS, key_of
from explainer.text import texts
from explainer.ui.stage import links
from tests.e2e.conftest import (CHROMIUM_ARGS, assert_no_exception, chromium_path, has_cjk, open_app, rerun,
                                sidebar_prompt, start_server, stop_server, title_text)
from tests.e2e.stage_tools import (decode_qr, main_slider, measure, projector_page, settle, share_dialog, shot,
                                   tour_label)

pytestmark = pytest.mark.slow
EN, ZH = texts("common", "en"), texts("common", "zh")
ZH_PROMPT = "猫和狗都是动物。猫喜欢鱼，狗喜欢骨头。猫和狗都是"
LONG = ("The cat sat on the mat. 猫坐在垫子上。🐱 " * 140).strip()          # 4,7xx characters


@pytest.fixture(scope="module")
def room_server():
    """The app listening on every interface, as in a classroom (README: --server.address 0.0.0.0)."""
    srv = start_server("e2e-stage-share.log", address="0.0.0.0")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def named_browser(browser):
    """Chromium that resolves classroom.test to this machine (no DNS involved)."""
    b = browser.browser_type.launch(executable_path=chromium_path(),
                                    args=CHROMIUM_ARGS + ["--host-resolver-rules=MAP classroom.test 127.0.0.1"])
    yield b
    b.close()


def _port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _press_slider(page, label: str, times: int) -> None:
    thumb = main_slider(page, label)
    for _ in range(times):
        rerun(page, lambda: (thumb.focus(), thumb.press("ArrowRight")))
    settle(page, 0.3)


def _query(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}


def test_qr_code_reproduces_the_view_in_a_second_browser(named_browser, room_server):
    port = _port(room_server)
    speaker = projector_page(named_browser)
    student = projector_page(named_browser)
    try:
        speaker.goto(f"http://classroom.test:{port}/attention?presenter=1&lang=zh&tour=4&layer=3"
                     f"&prompt={ZH_PROMPT}")
        settle(speaker)
        _press_slider(speaker, ZH["head"], 2)                    # the view moved on after the link was typed
        link = share_dialog(speaker)
        shot(speaker, "share-dialog-zh")
        decoded = decode_qr(speaker, "share-zh")
        print(f"\nshared link: {link}")
        assert links.readable(decoded) == link and "猫和狗" in link      # shown with characters, coded in the QR
        parts, query = urlsplit(link), _query(link)
        assert parts.netloc == f"classroom.test:{port}" and parts.path == "/attention"
        assert query == {"lang": "zh", "tour": "4", "layer": "3", "head": "2", "prompt": ZH_PROMPT}, query
        assert "presenter" not in query                           # the speaker's display, not the view

        student.goto(decoded)
        settle(student)
        assert has_cjk(title_text(student))
        assert main_slider(student, ZH["layer"]).input_value() == "3"
        assert main_slider(student, ZH["head"]).input_value() == "2"
        assert sidebar_prompt(student).input_value() == ZH_PROMPT
        assert tour_label(student).startswith("导览 5/")
        assert measure(student)["sidebarVisible"] >= 250, "the student gets the normal layout"
        assert_no_exception(student)
    finally:
        speaker.context.close()
        student.context.close()


def test_a_localhost_link_uses_this_computers_network_address(browser, room_server):
    lan = links.lan_addresses()
    speaker, student = projector_page(browser), projector_page(browser)
    try:
        open_app(speaker, room_server, "layers", {"layer": 5})
        link = share_dialog(speaker)
        dialog = speaker.locator("[role='dialog']").inner_text()
        if not lan:                                               # a machine with no network at all
            assert EN["stage.share_no_network"].format(host="127.0.0.1") in dialog
            return
        assert urlsplit(link).netloc == f"{lan[0]}:{_port(room_server)}", link
        assert EN["stage.share_localhost"].format(host="127.0.0.1", ip=lan[0]) in dialog
        assert links.readable(decode_qr(speaker, "share-lan")) == link
        student.goto(link)                                        # the address students use
        settle(student)
        assert title_text(student) == texts("layers", "en")["title"]
        assert "layer=5" in student.url
        assert_no_exception(student)
    finally:
        speaker.context.close()
        student.context.close()


def test_a_long_prompt_gets_a_short_link(browser, room_server):
    speaker, student = projector_page(browser), projector_page(browser)
    try:
        open_app(speaker, room_server, "tokens")
        box = sidebar_prompt(speaker)
        rerun(speaker, lambda: (box.fill(LONG), box.press("Control+Enter")))
        speaker.wait_for_function("() => location.search.includes('prompt_ref=')")
        query = _query(speaker.url)
        assert "prompt" not in query and query["prompt_ref"] == key_of(LONG)
        link = share_dialog(speaker)
        assert _query(link)["prompt_ref"] == key_of(LONG) and len(link) < 200, link
        note = EN["stage.share_short"].format(n=f"{len(LONG):,}")
        assert note in speaker.locator("[role='dialog']").inner_text()
        decoded = decode_qr(speaker, "share-long")
        assert links.readable(decoded) == link
        student.goto(decoded)
        settle(student)
        assert sidebar_prompt(student).input_value() == LONG
        assert_no_exception(student)
    finally:
        speaker.context.close()
        student.context.close()


def test_a_text_that_would_crowd_the_qr_code_goes_by_short_link(browser, room_server):
    text = "法国的首都是巴黎。德国的首都是柏林。" * 6               # 108 characters, ~1,000 in a URL
    page = projector_page(browser)
    try:
        open_app(page, room_server, "tokens", {"prompt": text, "lang": "zh"})
        assert "prompt=" in page.url                              # the page's own URL carries it plainly
        link = share_dialog(page)
        assert _query(link) == {"lang": "zh", "prompt_ref": key_of(text)}
        assert ZH["stage.share_short_qr"] in page.locator("[role='dialog']").inner_text()
        assert links.readable(decode_qr(page, "share-zh-medium")) == link
    finally:
        page.context.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("key, message", [("not-a-key", "stage.ref_malformed"),
                                          (key_of("never stored anywhere"), "stage.ref_unknown"),
                                          ("0" * KEY_CHARS + "<script>", "stage.ref_malformed")])
def test_bad_short_links_fall_back_with_a_notice(browser, room_server, key, message, lang):
    page = projector_page(browser)
    try:
        open_app(page, room_server, "tokens", {"prompt_ref": key, "lang": lang})
        shown = page.locator("[data-testid='stAlert']").all_inner_texts()
        expected = re.sub(r"\\(.)", r"\1", texts("common", lang)[message].format(value=links.shown(key)))
        assert any(expected in alert for alert in shown), shown
        assert "prompt_ref" not in page.url
        assert page.dialogs == []
    finally:
        page.context.close()
