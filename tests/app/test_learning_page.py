"""The Learning page under AppTest: a short live run, n-grams, GPT vs BERT, fine-tuning, save and load.

The page is opened straight away (no overview run first), so the big model is never loaded:
the page must work without it.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explainer.text import texts
from explainer.ui.frame.state import preset, stored
from tests.app.conftest import APP

E2E_START = re.compile(r"train|start|run|训练|开始", re.I)


def open_learning(lang: str = "en", steps: int | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    preset(at.session_state, lang=lang)
    if steps is not None:
        at.session_state["learn_steps"] = steps
    at.switch_page("pages/learning.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def trainer_of(at: AppTest):
    return at.session_state["learn_trainer"]["trainer"]


def train(at: AppTest, timeout: float = 30.0) -> None:
    """Click Start and wait (bounded) for the background run to finish, then redraw."""
    at.button(key="learn_start").click().run()
    trainer = trainer_of(at)
    assert trainer.wait(timeout), "training did not finish in time"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert trainer.snapshot().finished


def charts(at: AppTest) -> list[str]:
    """Titles of the plotly charts on the page."""
    import json
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_page_opens_with_step_zero_views(lang):
    at = open_learning(lang)
    assert at.title[0].value == texts("learning", lang)["title"]
    assert at.radio(key="learn_source").value == f"facts_{lang}"   # the text follows the language
    titles = charts(at)
    assert len(titles) >= 5                                          # loss, probes, attention, n-grams, masks
    t = texts("learning", lang)
    assert t["loss_title"] in titles and t["masks_title"] in titles
    first = next(b for b in at.button if E2E_START.search(b.label))   # what the browser test clicks
    assert first.key == "learn_start" and not first.disabled
    assert at.button(key="learn_pause").disabled and at.button(key="learn_resume").disabled
    snap = trainer_of(at).snapshot()
    assert snap.step == 0 and not snap.running


def test_short_training_run_shows_loss_probes_samples_and_ngrams():
    at = open_learning(steps=40)
    train(at)
    snap = trainer_of(at).snapshot()
    assert snap.step == 40 and len(snap.train_loss) == 40
    assert snap.train_loss[-1] < snap.train_loss[0]                  # it learned something
    text = " ".join(m.value for m in at.markdown)
    assert "loss" in text.lower()
    titles = charts(at)
    t = texts("learning", "en")
    assert t["loss_title"] in titles and t["heldout_title"] in titles
    assert t["probes_title"].format(before=0, after=40) in titles
    frames = [d.value for d in at.dataframe]
    samples = next(f for f in frames if t["col_greedy"] in f.columns)
    assert set(samples[t["col_step"]]) == {0, 20, 40}
    counts = [f for f in frames if t["col_context"] in f.columns and t["col_next"] in f.columns]
    assert len(counts) == 3 and all(len(f) > 0 for f in counts)      # unigram, bigram, trigram tables
    unseen = next(f for f in frames if t["col_neural_prob"] in f.columns)
    assert (unseen[t["col_ngram_prob"]] == 0).all() and (unseen[t["col_neural_prob"]] > 0).all()
    assert at.button(key="learn_start").disabled and not at.button(key="learn_reset").disabled


def test_pause_resume_and_reset():
    at = open_learning(steps=1000)
    at.button(key="learn_start").click().run()
    trainer = trainer_of(at)
    deadline = time.monotonic() + 20
    while trainer.snapshot().step < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    at.button(key="learn_pause").click().run()
    paused = trainer.snapshot()
    assert not paused.running and 0 < paused.step < 1000
    time.sleep(0.3)
    assert trainer.snapshot().step == paused.step
    assert not at.button(key="learn_resume").disabled and at.button(key="learn_pause").disabled
    at.button(key="learn_resume").click().run()
    assert trainer.snapshot().running
    at.button(key="learn_reset").click().run()
    snap = trainer.snapshot()
    assert snap.step == 0 and not snap.running and trainer.wait(5)
    assert not at.exception and not at.button(key="learn_start").disabled


def test_objectives_and_finetune_buttons_draw_their_charts():
    at = open_learning(steps=40)
    train(at)
    t = texts("learning", "en")
    at.select_slider(key="learn_obj_steps").set_value(50).run()
    at.button(key="learn_obj_go").click().run()
    assert not at.exception
    assert t["objectives_loss_title"] in charts(at)
    fill = at.session_state["learn_objectives"]["value"]
    assert len(fill.gpt_loss) == len(fill.bert_loss) == 50
    assert any("BERT" in c.proto.spec for c in at.get("plotly_chart"))    # GPT's vs BERT's candidates
    at.text_input(key="learn_fill_facts_en").set_value("the apple is red").run()   # no blank
    assert any("[MASK]" in w.value for w in at.warning)
    at.select_slider(key="learn_ft_steps").set_value(30).run()
    at.button(key="learn_ft_go").click().run()
    assert not at.exception
    view = at.session_state["learn_finetune"]["value"]
    assert set(view["before"]) == set(view["after"]) and len(view["loss"]) == 30
    assert any(t["after_ft"] in d.value.columns for d in at.dataframe)
    assert len(at.get("plotly_chart")) >= 8


def test_custom_text_messages_and_training():
    at = open_learning()
    at.radio(key="learn_source").set_value("custom").run()
    assert not at.exception and at.info                               # empty text: a friendly hint
    at.text_area(key="learn_text").set_value("the cat sleeps .\nthe dog runs .").run()
    assert not at.exception and any("10" in w.value for w in at.warning)
    lines = [f"the {a} is {c} ." for a in ("ball", "car", "hat", "cup", "box", "pen")
             for c in ("red", "blue", "green")]
    at.text_area(key="learn_text").set_value("\n".join(lines)).run()
    assert not at.exception and not at.warning
    at.slider(key="learn_steps").set_value(20).run()
    train(at)
    trainer = trainer_of(at)
    assert trainer.corpus.name == "custom" and trainer.probes[0] == "the ball is"
    assert any(i.value == texts("learning", "en")["finetune_builtin_only"] for i in at.info)


def test_save_explore_and_load_back(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_EXPLAINER_CACHE", str(tmp_path))
    at = open_learning(steps=20)
    train(at)
    at.button(key="learn_save").click().run()
    folder = Path(at.session_state["learn_saved"][0])
    assert folder.parent == tmp_path / "learning" and (folder / "config.json").is_file()
    assert at.success and not at.exception
    at.button(key="learn_explore").click().run()
    assert stored(at.session_state, "model") == str(folder)                 # the sidebar now names the tiny model
    before = trainer_of(at).snapshot()
    again = open_learning(steps=300)                                  # a new session: loads the saved run
    again.button(key="learn_load").click().run()
    assert not again.exception and again.success
    loaded = trainer_of(again).snapshot()
    assert loaded.step == 20 and loaded.train_loss == before.train_loss
    assert loaded.latest.probes == before.latest.probes
