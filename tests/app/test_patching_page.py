"""Where is the answer decided? On first open: a ready pair, the four maps, a sentence per map, the
strongest cell run again; picking cells and pairs; deep links; bad pairs worded in both languages;
the maps computed behind the page (the pair's boxes at once, let go when the pair changes or the page
is left); one computation per pair for everyone."""
import json
import threading

import pytest

from explainer.analysis import patching
from explainer.jobs import runner
from explainer.analysis.patching_pairs import READY_PAIRS
from explainer.text import texts
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
from explainer.ui.sections import patching as section
from explainer.ui.tools.apptest import pending_jobs, settle_jobs
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
    settle_jobs(at.selectbox(key="patching_pair").set_value(2).run())     # Mary and John
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


@pytest.fixture
def held(monkeypatch):
    """The maps wait (reporting progress, so they can be cancelled) until the gate opens; ``calls``
    counts the computations that began."""
    gate, real, calls = threading.Event(), section.activation_patching, []

    def slow(*args, progress=None, **kwargs):
        calls.append(args[1:3])
        while not gate.wait(0.05):
            progress(0.0, "held")
        return real(*args, progress=progress, **kwargs)
    runner().cancel(lambda key: key[0] == "patching")      # an earlier test's sweep, still running, is not joined
    runner().forget(lambda key: key[0] == "patching")
    monkeypatch.setattr(section, "activation_patching", slow)
    yield gate, calls
    gate.set()


def _progress_texts(at) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def test_the_pair_draws_at_once_and_the_maps_fill_in(held):
    gate, _ = held
    at = open_page("patching", settle=False)
    assert not at.exception and not at.warning
    assert at.text_input(key=widget_key("corrupted")).value == CAPITALS.corrupted     # the pair is there at once
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]              # and what each prompt predicts
    assert [c["layout"]["title"]["text"] for c in charts] == [T["pair_title"]]
    assert [bar["name"] for bar in charts[0]["data"]] == [T["bar_clean"], T["bar_corrupted"]]
    assert charts[0]["data"][0]["x"][0] == "␣Berlin"
    label = T["running"].format(cells=30 * (3 * 12 + 9))                           # SmolLM2: 30 layers, 9 heads
    assert any(text.startswith(label) for text in _progress_texts(at)), _progress_texts(at)
    assert "patching.maps" in pending_jobs(at)
    gate.set()
    settle_jobs(at)
    at.run()                                                              # what the progress line does once done
    assert not at.exception and len(at.get("plotly_chart")) == 5 and not _progress_texts(at)


def test_a_changed_pair_a_bad_pair_or_another_page_lets_go(held):
    at = open_page("patching", settle=False)
    first = pending_jobs(at)["patching.maps"]
    at.selectbox(key="patching_pair").set_value(2).run()                  # another pair: the first is let go
    second = pending_jobs(at)["patching.maps"]
    assert not at.exception and runner().poll(first) is None and second != first
    at.text_input(key=widget_key("corrupted")).input("Mary").run()        # a bad pair: worded, nothing computed
    assert not at.exception and runner().poll(second) is None and not pending_jobs(at)
    assert "tokens" in at.warning[0].value
    at.selectbox(key="patching_pair").set_value(0).run()
    third = pending_jobs(at)["patching.maps"]
    at.switch_page("pages/tokens.py").run()                               # another page: let go
    assert not at.exception and runner().poll(third) is None


def test_a_room_on_one_pair_is_one_computation(held):
    gate, calls = held
    started = runner().started
    room = [open_page("patching", settle=False) for _ in range(30)]
    assert len({pending_jobs(at)["patching.maps"] for at in room}) == 1
    gate.set()
    for at in room[:3]:
        settle_jobs(at).run()
        assert not at.exception and len(at.get("plotly_chart")) == 5
    assert len(calls) == 1 and runner().started == started + 1
