"""Bad input typed or linked in a real browser: never rendered as HTML, always a friendly message."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from explainer.text import texts
from tests.e2e.conftest import (ALERT, CHART, app_pages, assert_no_exception, has_cjk, is_stub, new_page,
                                open_app, page_params, rerun, sidebar_prompt, title_text, wait_parts)

pytestmark = pytest.mark.slow
EN = texts("common", "en")
XSS = "<script>alert(1)</script><img src=x onerror=alert(1)> <b>bold</b> Hello"

NO_INJECTED_ELEMENTS = """() => ({
  imgs: Array.from(document.querySelectorAll('img')).filter(i => i.getAttribute('src') === 'x').length,
  scripts: Array.from(document.querySelectorAll('script')).filter(s => s.textContent.includes('alert(1)')).length,
  bolds: Array.from(document.querySelectorAll('b')).filter(b => b.textContent === 'bold').length,
  onerror: document.querySelectorAll('[onerror]').length,
})"""


@pytest.mark.parametrize("slug", page_params())
def test_html_in_the_prompt_is_never_rendered(browser, server, slug):
    page = new_page(browser)
    try:
        open_app(page, server, slug, {"prompt": XSS}, expect="any")
        wait_parts(page)                                # the heavy parts drawn too (the page runs once more)
        page.wait_for_timeout(300)                      # give any injected onerror a chance to fire
        found = page.evaluate(NO_INJECTED_ELEMENTS)
        assert found == {"imgs": 0, "scripts": 0, "bolds": 0, "onerror": 0}, found
        assert not page.dialogs
        expect(sidebar_prompt(page)).to_have_value(XSS, timeout=15_000)   # kept (a rerun redraws the box)
        if slug == "tokens":                            # shown as text instead
            assert "script" in page.locator("[data-testid='stHtml']").first.inner_text()
    finally:
        page.context.close()


def test_odd_url_values_fall_back_with_notices(page, server):
    junk = "z" * 3000
    query = (f"layer=-5&head=abc&temp=999&lang=xx&max_tokens=99999&presenter=maybe&top_p=nan"
             f"&unknown=1&{junk}={junk}&device=quantum")
    open_app(page, server, "tokens", query)
    alerts = page.locator(ALERT).all_inner_texts()
    joined = "\n".join(alerts)
    for name in ("layer", "head", "temp", "lang", "max_tokens", "presenter", "device"):
        assert f"“{name}”" in joined, f"no notice for {name}: {alerts}"
    assert not has_cjk(title_text(page))                 # lang=xx → English
    assert page.locator(CHART).count() >= 1


def test_very_long_prompt_in_the_url(page, server):
    open_app(page, server, "tokens", {"prompt": "word " * 2000, "max_tokens": 64})
    assert EN["truncated"].format(n=64)[:40] in "\n".join(page.locator(ALERT).all_inner_texts())
    assert page.locator("[data-testid='stMetricValue']").first.inner_text().strip() == "64"


UNUSUAL = {
    "emoji-zwj": "👩‍👩‍👧 family 🇨🇳 flag",
    "rtl": "مرحبا بالعالم שלום עולם mixed",
    "control": "tab\there\x01\x07bell\x1b[31mred",
    "nul": "a\x00b NUL inside",
}


def test_unusual_text_typed_in_the_sidebar(page, server):
    open_app(page, server, "tokens")
    box = sidebar_prompt(page)
    for name, text in UNUSUAL.items():
        rerun(page, lambda: (box.fill(text), box.press("Control+Enter")))
        page.wait_for_selector(f"{CHART}, {ALERT}")
        assert_no_exception(page)
        assert page.locator(CHART).count() >= 1, name
        kept = box.input_value()
        assert kept.replace("\x00", "") == text.replace("\x00", ""), (name, repr(kept))


def test_empty_prompt_is_friendly_and_recoverable(page, server):
    open_app(page, server, "tokens")
    box = sidebar_prompt(page)
    rerun(page, lambda: (box.fill("   \n  "), box.press("Control+Enter")))
    page.wait_for_selector(ALERT)
    assert EN["empty_prompt"][:30] in page.locator(ALERT).first.inner_text()
    assert box.input_value() == "   \n  "
    assert_no_exception(page)
    rerun(page, lambda: (box.fill("Back to work"), box.press("Control+Enter")))
    page.wait_for_selector(CHART)
    assert_no_exception(page)


@pytest.fixture(scope="module")
def broken_model_dir(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    from explainer.models import default_tokenizer
    folder = tmp_path_factory.mktemp("corrupt-model")
    GPT2LMHeadModel(GPT2Config(vocab_size=49152, n_positions=64, n_embd=32, n_layer=1, n_head=2)).save_pretrained(folder)
    default_tokenizer().save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"\x00garbage" * 1000)
    return folder


@pytest.mark.parametrize("which", ["missing-folder", "corrupt-weights", "unknown-name"])
def test_bad_model_shows_a_message_and_others_keep_working(browser, server, broken_model_dir, which):
    name = {"missing-folder": "/no/such/model/folder", "corrupt-weights": str(broken_model_dir),
            "unknown-name": "not a model!!"}[which]
    prompt = "My own words stay here"
    page = new_page(browser)
    other = new_page(browser)
    try:
        open_app(page, server, "tokens", {"model": name, "prompt": prompt}, expect="alert")
        message = page.locator(ALERT).first.inner_text()
        assert "could not be loaded" in message, message
        assert sidebar_prompt(page).input_value() == prompt        # nothing the user typed is lost
        open_app(other, server, "tokens")                          # another student is unaffected
        # the same user can still move to another page without a crash
        for file, slug in app_pages():
            if slug != "tokens" and not is_stub(file):
                open_app(page, server, slug, {"model": name, "prompt": prompt}, expect="alert")
                break
        assert_no_exception(page)
    finally:
        page.context.close()
        other.context.close()
