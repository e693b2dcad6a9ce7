"""On stage in AppTest: presenter header, short links in the URL, notices for bad ones, a complete URL."""
from __future__ import annotations

import pytest

from explainer import shortlinks
from explainer.text import texts
from explainer.ui.frame.params import DEFAULT_PROMPTS, MAX_URL_TEXT
from explainer.ui.frame.state import stored
from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP, open_page

EN, ZH = texts("common", "en"), texts("common", "zh")
LONG = "The capital of France is Paris. The capital of Germany is Berlin. " * 70      # 4,620 characters


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Short links go to a fresh cache folder (the models stay where they are: paths are resolved first)."""
    from explainer.models import default_model_dir
    default_model_dir()                                   # resolve (and keep) the converted model's folder
    monkeypatch.setattr(shortlinks, "default_store", lambda: shortlinks.ShortLinkStore(tmp_path / "shortlinks"))
    return tmp_path / "shortlinks"


def _warnings(at) -> list[str]:
    return [w.value for w in at.warning]


def test_presenter_header_folds_the_explanations_and_offers_sharing():
    at = open_page("attention", presenter=True)
    assert not at.exception, at.exception
    intro = texts("attention", "en")["intro"]
    shown = [m.value.strip() for m in at.main.markdown]
    assert intro.strip() not in shown, "the intro should be folded in presenter mode"
    assert any(intro.strip() in value for value in shown), "the folded explanation should hold the intro"
    labels = [e.label for e in at.main.expander]
    assert EN["stage.explain_label"] in labels
    assert at.button(key="share_room_main").label == EN["stage.share_short_button"]
    assert at.button(key="share_room").label == EN["stage.share_button"]


def test_normal_header_is_unchanged():
    at = open_page("attention")
    assert not at.exception
    assert any(m.value.strip() == texts("attention", "en")["intro"].strip() for m in at.main.markdown)
    assert EN["stage.explain_label"] not in [e.label for e in at.main.expander]


def test_a_long_prompt_travels_as_a_short_link(own_cache):
    at = open_page("tokens", prompt=LONG)
    assert not at.exception
    key = at.query_params["prompt_ref"]
    assert "prompt" not in at.query_params
    assert (own_cache / f"{key}.txt").read_text(encoding="utf-8") == LONG
    assert len(LONG) > MAX_URL_TEXT


def test_a_short_link_restores_the_text(own_cache):
    key = shortlinks.default_store().save(LONG)
    at = open_page("tokens", query={"prompt_ref": key, "lang": "zh"})
    assert not at.exception
    assert stored(at.session_state, "prompt") == LONG
    assert not _warnings(at)


@pytest.mark.parametrize("make_key, message", [
    (lambda store: "not-a-key", "stage.ref_malformed"),
    (lambda store: shortlinks.key_of("never stored"), "stage.ref_unknown"),
    (lambda store: _tampered(store), "stage.ref_damaged"),
])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bad_short_links_fall_back_with_a_notice(make_key, message, lang):
    key = make_key(shortlinks.default_store())
    at = AppTest.from_file(APP, default_timeout=120)      # the link opens the first page
    at.query_params.update({"prompt_ref": key, "lang": lang})
    at.run()
    assert not at.exception, at.exception
    assert stored(at.session_state, "prompt") == DEFAULT_PROMPTS[lang]     # the default text of that language
    expected = texts("common", lang)[message].format(value=key.replace("-", "\\-"))
    assert expected in _warnings(at), _warnings(at)
    assert at.get("plotly_chart"), "the page should still show its charts"
    assert "prompt_ref" not in at.query_params


def _tampered(store: shortlinks.ShortLinkStore) -> str:
    key = store.save(LONG)
    path = store.root / f"{key}.txt"
    path.write_text(LONG.replace("Paris", "Rome!"), encoding="utf-8")
    return key


def test_the_url_keeps_the_whole_view_across_pages():
    at = open_page("attention", layer=3, head=2, tour=4)
    assert (at.query_params["layer"], at.query_params["head"]) == ("3", "2")
    at.query_params.clear()                                # as a page switch in the browser does
    at.switch_page("pages/tokens.py").run()                # a page without layer and head
    assert not at.exception
    assert (at.query_params["layer"], at.query_params["head"], at.query_params["tour"]) == ("3", "2", "4")


def test_share_dialog_shows_a_qr_code_and_the_link():
    at = open_page("attention", layer=3, lang="zh")
    at.button(key="share_room").click().run()
    assert not at.exception, at.exception
    link = [c.value for c in at.get("code")]
    assert link and "layer=3" in link[0] and "lang=zh" in link[0]
    assert at.get("image"), "the QR code should be shown"


def test_a_disk_that_refuses_the_long_text_is_reported(monkeypatch):
    class FullDisk(shortlinks.ShortLinkStore):
        def save(self, text: str) -> str:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(shortlinks, "default_store", lambda: FullDisk("/nonexistent"))
    at = open_page("tokens", prompt=LONG)
    assert not at.exception, at.exception
    assert "prompt_ref" not in at.query_params and "prompt" not in at.query_params
    at.button(key="share_room").click().run()
    assert not at.exception, at.exception
    link = at.get("code")[0].value
    assert "prompt" not in link
    assert EN["stage.share_text_missing"] in [w.value for w in at.warning], [w.value for w in at.warning]


def test_a_store_error_while_sharing_is_reported(monkeypatch):
    class FullDisk(shortlinks.ShortLinkStore):
        def save(self, text: str) -> str:
            raise OSError(28, "No space left on device")

    medium = "法国的首都是巴黎。" * 20                          # fits a QR code, but not an easy one to scan
    at = open_page("tokens", prompt=medium)
    monkeypatch.setattr(shortlinks, "default_store", lambda: FullDisk("/nonexistent"))
    at.button(key="share_room").click().run()
    assert not at.exception, at.exception
    assert "prompt=法国的首都是巴黎。" in at.get("code")[0].value          # in full, since it fits a URL
    assert any("No space left on device" in w.value for w in at.warning), [w.value for w in at.warning]
    assert at.get("image"), "the denser code is still drawn"
