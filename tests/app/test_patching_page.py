"""Where is the answer decided? On first open: a ready pair, the four maps, a sentence per map, the
strongest cell run again; picking cells and pairs; deep links; bad pairs worded in both languages;
one computation per pair for everyone."""
import json

import pytest

from explainer.analysis import patching
from explainer.analysis.patching_pairs import READY_PAIRS
from explainer.text import texts
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
from tests.app.conftest import open_page

T = texts("patching", "en")
CAPITALS = READY_PAIRS["en"][0]


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _cell(at) -> str:
    """The title of the picked cell's chart (the one chart of bars)."""
    found = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]
    found = [layout["title"]["text"] for layout in found if layout.get("barmode") == "group"]
    assert len(found) == 1
    return found[0]


def test_first_open_shows_the_four_maps_and_what_they_say():
    before = patching._recent.misses
    at = open_page("patching")
    assert not at.exception and not at.warning
    assert _metrics(at) == {T["answer"]: "␣Berlin", T["contrast"]: "␣Rome"}
    assert len(at.get("plotly_chart")) == 5                              # four maps and the picked cell
    assert at.info[0].value == ("Copying the residual at “␣Germany” in layers 0–23 brings back ␣Berlin "
                                "(up to 100%). From layer 24 on, only the last position matters "
                                "(100% at the last layer).")
    captions = [c.value for c in at.caption]
    assert any(c.startswith("**Head 23.4** alone brings back") for c in captions), captions
    assert any(c.startswith("Copying what the MLP adds at “␣Germany” in layer 0") for c in captions), captions
    assert "layer 24, position 11" in _cell(at)                      # the strongest cell, run again
    assert at.text_input(key=widget_key("clean")).value == CAPITALS.clean
    assert "clean" not in at.query_params                                 # the default pair: a short link
    again = open_page("patching")                                         # a second student: nothing recomputed
    assert not again.exception and patching._recent.misses <= before + 1


def test_picking_a_cell_runs_it_again_and_the_link_keeps_it():
    at = open_page("patching")
    at.selectbox(key=widget_key("site")).set_value("heads").run()
    at.selectbox(key="patching_layer_heads").set_value(23).run()
    at.selectbox(key="patching_index_heads").set_value(4).run()
    assert not at.exception
    assert "head 23.4" in _cell(at)
    assert at.query_params.get("site") == "heads" and at.query_params.get("cell") == "23.4"
    link = open_page("patching", query={"site": "mlp_out", "cell": "0.10"})
    assert "layer 0, position 10 (␣Germany)" in _cell(link)


def test_a_ready_pair_fills_both_boxes():
    at = open_page("patching")
    at.selectbox(key="patching_pair").set_value(2).run()                  # Mary and John
    assert not at.exception
    assert at.text_input(key=widget_key("corrupted")).value == READY_PAIRS["en"][2].corrupted
    assert _metrics(at) == {T["answer"]: "␣Mary", T["contrast"]: "␣John"}
    assert stored(at.session_state, "clean") == READY_PAIRS["en"][2].clean


@pytest.mark.parametrize("lang, clean, corrupted, words", [
    ("en", CAPITALS.clean, "The capital of France is Paris. The capital of the United Kingdom is",
     ["12 tokens", "14", "has “␣Germany” and the corrupted one “␣the␣United␣Kingdom” (1 against 3 tokens)"]),
    ("en", CAPITALS.clean, CAPITALS.clean, [T["error_same"]]),
    ("en", "  ", CAPITALS.corrupted, ["The clean prompt is empty"]),
    ("en", "word " * 40, CAPITALS.corrupted, ["41 tokens", "at most 32"]),
    ("zh", "法国的首都是巴黎。德国的首都是", "法国的首都是巴黎。马达加斯加的首都是",
     ["9 个词元", "13 个", "干净的提示是 “德国”，损坏的提示是 “马达加斯加”（1 个词元对 5 个）"]),
])
def test_bad_pairs_are_worded_and_nothing_typed_is_lost(lang, clean, corrupted, words):
    at = open_page("patching", lang=lang, clean=clean, corrupted=corrupted)
    assert not at.exception
    message = at.warning[0].value if at.warning else ""
    assert all(w in message for w in words), message
    assert not at.get("plotly_chart")
    assert at.text_input(key=widget_key("corrupted")).value == corrupted    # what was typed stays


def test_chinese_with_gemma():
    t = texts("patching", "zh")
    at = open_page("patching", lang="zh")
    assert not at.exception and not at.warning
    assert at.title[0].value == t["title"]
    assert _metrics(at) == {t["answer"]: "Anna", t["contrast"]: "Tom"}
    assert at.info[0].value.startswith("在第 0–") and "“Tom”处的残差" in at.info[0].value
    assert len(at.get("plotly_chart")) == 5 and "残差流" in "".join(c.proto.spec for c in at.get("plotly_chart"))


def test_presenter_mode():
    at = open_page("patching", presenter=True)
    assert not at.exception and len(at.get("plotly_chart")) == 5
