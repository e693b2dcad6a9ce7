"""AppTest of the Embeddings page.

The real vocabulary map takes 30–60 s to build, far too slow here. Each test points the
map cache at its own empty folder, so the page shows the "build" button; one test writes
a FIXTURE map (random coordinates, not a real UMAP layout) through the library's own
``save_vocab_map``, another clicks the button with UMAP replaced by a fake layout.

The page script is run on its own (it draws the shared frame itself), with URL-backed
values preset in session state.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explainer.analysis import vocab_map
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.shared import traces_computed
from explainer.ui.frame.state import preset
from explainer.ui.tools.apptest import settle_jobs
from tests.app.conftest import ZH_PROMPT, open_page

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "embeddings.py")
BASE_CHARTS = 5   # token vectors, neighbours, word pairs, analogy, failing analogy


@pytest.fixture
def map_cache(tmp_path, monkeypatch) -> Path:
    """An empty, private folder for vocabulary maps (the converted model stays where it is)."""
    monkeypatch.setattr(vocab_map, "cache_dir", lambda *parts: tmp_path)
    return tmp_path


def run_page(query: dict | None = None, **values) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    preset(at.session_state, **values)
    return at.run()


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def map_charts(at: AppTest) -> list[dict]:
    return [c for c in charts(at) if c["data"] and c["data"][0]["type"] == "scattergl"]


def build_button(at: AppTest):
    return [b for b in at.button if b.key == "emb_build_map"]


def test_default_prompt_without_map_shows_everything_else(map_cache):
    at = run_page()
    assert not at.exception
    assert len(charts(at)) == BASE_CHARTS and not map_charts(at)
    assert build_button(at)                                   # offered, not started
    kinds = [c["data"][0]["type"] for c in charts(at)]
    assert kinds[0] == "heatmap"
    text = " ".join(m.value for m in at.markdown)
    assert "**queen** ranks **#1** with the input words left out" in text   # king − man + woman
    assert "**Rome** ranks" in text and "**Rome** ranks **#1**" not in text
    assert not list(map_cache.glob("*.npz"))                  # nothing was built


@pytest.mark.integration
def test_prebuilt_map_is_drawn_with_the_prompt_highlighted(map_cache, default_model):
    emb = default_model.embedding_matrix()
    coords = np.random.default_rng(0).normal(size=(emb.shape[0], 2)).astype(np.float32)
    fixture = vocab_map.VocabMap(default_model.cache_key, coords, "umap", emb.shape[1], 42.0, False)
    vocab_map.save_vocab_map(fixture, emb)                    # FIXTURE: random coordinates
    at = run_page()
    assert not at.exception and not build_button(at)
    (vmap,) = map_charts(at)
    assert len(vmap["data"]) == 3                              # all, neighbours, your prompt
    assert "%{hovertext}" in vmap["data"][0]["hovertemplate"]
    assert len(charts(at)) == BASE_CHARTS + 1


def test_button_builds_the_map_behind_the_page_once(map_cache, monkeypatch):
    calls, release = [], threading.Event()

    def fake_layout(x, progress):                              # stands in for the slow UMAP
        calls.append(tuple(x.shape))
        release.wait(60)
        return x[:, :2].numpy().copy()
    monkeypatch.setattr(vocab_map, "_umap_2d", fake_layout)
    at = run_page()
    build_button(at)[0].click().run()
    assert not at.exception and not build_button(at) and not map_charts(at)
    assert len(charts(at)) == BASE_CHARTS                      # the page is all there while the map builds
    assert at.get("progress") and "Building the vocabulary map" in at.get("progress")[0].proto.text
    release.set()
    settle_jobs(at)
    assert not at.exception and calls and len(map_charts(at)) == 1
    assert list(map_cache.glob("*.npz"))
    at.run()                                                   # next run: loaded, not rebuilt
    assert len(calls) == 1 and len(map_charts(at)) == 1 and not build_button(at)


@pytest.mark.parametrize("values", [{"prompt": ZH_PROMPT}, {"lang": "zh"}, {"presenter": True}])
def test_variants_render(map_cache, values):
    at = run_page(**values)
    assert not at.exception
    assert len(charts(at)) == BASE_CHARTS
    if values.get("lang") == "zh":
        assert at.title[0].value.startswith("词向量")


def test_empty_prompt_is_friendly(map_cache):
    at = run_page(prompt="   ")
    assert not at.exception and not charts(at)
    assert any("empty" in i.value for i in at.info)


def test_word_from_url_and_chinese_word(map_cache):
    at = run_page(query={"word": "queen"})
    assert not at.exception
    titles = [c["layout"]["title"]["text"] for c in charts(at)]
    assert any("queen" in s for s in titles)
    at.text_input(key=widget_key("word")).input("猫").run()
    assert not at.exception
    assert any("猫" in i.value and "3 pieces" in i.value for i in at.info)   # split, said so
    assert at.query_params["word"] in ("猫", ["猫"])            # deep link follows


def test_view_controls_do_not_rerun_the_model(map_cache):
    at = run_page()
    misses = traces_computed()
    at.text_input(key=widget_key("word")).input("dog").run()
    at.text_area(key="emb_pairs_text_en").input("sun, moon\nbad line with three").run()
    assert not at.exception
    assert traces_computed() == misses
    assert any("bad line with three" in w.value for w in at.warning)


def test_long_prompt_shows_a_window_of_tokens(map_cache):
    at = run_page(prompt="one two three four five six seven eight nine ten " * 8, token=5)
    assert not at.exception
    heat = charts(at)[0]["data"][0]
    assert heat["type"] == "heatmap" and len(heat["y"]) == 40
    assert heat["y"][0].startswith("0: ")                      # centred on 5, clamped at 0
    assert any("0–39" in c.value for c in at.caption)


def test_chinese_lesson_with_the_multilingual_model(map_cache):
    """中文 with no model chosen: Gemma 3, Chinese defaults, and the lesson comes out right."""
    at = open_page("embeddings", lang="zh")
    assert not at.exception
    assert at.text_input(key=widget_key("word")).value == "猫"
    pairs = at.text_area(key="emb_pairs_text_zh").value
    assert pairs.splitlines()[:2] == ["猫, 狗", "猫, 汉堡"]
    assert [at.text_input(key=f"emb_an_{k}_zh").value for k in "abce"] == ["国王", "男人", "女人", "女王"]
    text = " ".join(m.value for m in at.markdown)
    assert "**女王**" in text and "第 **1** 位" in text              # 国王 − 男人 + 女人: 女王 first
