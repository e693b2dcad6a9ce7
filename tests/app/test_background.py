"""Heavy parts compute behind the page: the page draws everything else at once with a progress line
in their place, fills them in when they are ready, and lets go of them when the view moves on
(another page, another text), while the tour keeps working."""
from __future__ import annotations

import threading

import pytest

import explainer
from explainer.analysis import attention as att
from explainer.analysis import attribution_inputs as ai
from explainer.jobs import runner
from explainer.text import texts
from explainer.ui.frame import background
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.params import DEFAULT_PROMPT_ZH
from explainer.ui.sections import why as why_section
from explainer.ui.stage.tour import tour_steps
from explainer.ui.tools.apptest import open_page, pending_jobs, settle_jobs

PROMPT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(autouse=True)
def nothing_scored():
    """No stored job outcome or remembered attribution from an earlier test."""
    runner().cancel()
    runner().forget()
    ai.forget_all()


@pytest.fixture
def held(monkeypatch):
    """Scoring words waits (reporting progress, so it can be cancelled) until the gate opens."""
    gate, real = threading.Event(), why_section.input_attribution

    def slow(*args, progress=None, **kwargs):
        while not gate.wait(0.05):
            if progress is not None:
                progress(0.0, "held")
        return real(*args, progress=progress, **kwargs)
    monkeypatch.setattr(why_section, "input_attribution", slow)
    yield gate
    gate.set()


def _progress_texts(at) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def test_why_draws_everything_else_while_the_words_are_scored(held):
    t = texts("why", "en")
    at = open_page("why", settle=False, prompt=PROMPT, method="gradient_x_input")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2                               # heads and MLP layers, at once
    assert any(text.startswith(t["inputs_running"].format(answer="␣Berlin")) for text in _progress_texts(at))
    assert t["off_header"] in [s.value for s in at.subheader]             # the rest of the page is there too
    assert "why.inputs" in pending_jobs(at)
    sentence = at.info[0].value                                           # heads and MLP layers named already
    held.set()
    settle_jobs(at)
    assert not at.exception and len(at.get("plotly_chart")) == 3 and not _progress_texts(at)
    assert at.info[0].value.startswith(sentence) and len(at.info[0].value) > len(sentence)   # … and a word now


def test_moving_on_lets_go_of_the_old_job(held):
    at = open_page("why", settle=False, prompt=PROMPT, method="gradient_x_input")
    first = pending_jobs(at)["why.inputs"]
    cancelled = runner().cancelled
    at.switch_page("pages/tokens.py").run()                               # another page: released at once
    assert not at.exception and runner().poll(first) is None and runner().cancelled == cancelled + 1
    at.switch_page("pages/why.py").run()
    second = pending_jobs(at)["why.inputs"]
    at.sidebar.text_area(key=widget_key("prompt")).input("The capital of Italy is Rome. The capital of Spain is")
    at.run()
    assert not at.exception and runner().poll(second) is None            # another text: released
    assert pending_jobs(at)["why.inputs"] != second


def test_the_tour_moves_on_while_a_part_computes(held):
    model = explainer.load_model()
    steps = tour_steps(model, explainer.trace(model, PROMPT))
    step = next(i for i, s in enumerate(steps) if s.page == "why")        # the tour's stop on this page
    at = open_page("why", settle=False, tour=step, prompt=PROMPT, method="gradient_x_input")
    key = pending_jobs(at)["why.inputs"]
    at.button(key="tour_back").click().run()                              # AppTest does not follow switch_page:
    assert not at.exception
    at.switch_page("pages/generation.py").run()                           # … we do, as the browser would
    assert not at.exception and at.get("plotly_chart") and runner().poll(key) is None


def test_attention_draws_before_its_head_statistics(monkeypatch):
    gate, real = threading.Event(), att.cached_head_stats

    def slow(trace, progress=None, sample=False):
        while not gate.wait(0.05):
            if progress is not None:
                progress(0.0, "held")
        return real(trace, progress, sample)
    monkeypatch.setattr(att, "cached_head_stats", slow)
    at = open_page("attention", settle=False, prompt="Head statistics wait here: a text no other test traces.")
    assert not at.exception
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert len(keys) >= 4 and not [b for b in at.button if b.key and b.key.startswith("jump_")]
    assert any(texts("attention", "en")["stats_spinner"] in text for text in _progress_texts(at))
    gate.set()
    settle_jobs(at)
    assert not at.exception and len(at.get("plotly_chart")) == len(keys) + 1
    assert [b for b in at.button if b.key == "jump_previous"]


def test_scores_that_miss_say_by_how_much_and_refine_continues(monkeypatch):
    monkeypatch.setattr(ai, "BUDGET_S", 0.0)                               # the first round only, then refine by hand
    t = texts("why", "en")
    at = open_page("why", timeout=600, prompt=PROMPT)
    assert not at.exception and not pending_jobs(at)
    (warning,) = [w.value for w in at.warning]
    first = ai.input_attribution(explainer.load_model(), PROMPT, budget_s=0.0)    # what the page computed
    assert first.missed and first.stopped == "budget"
    assert f"{first.completeness_error:.1%} off, after {first.steps} points" in warning
    at.button(key="why_refine").click().run()
    settle_jobs(at, 600)
    assert not at.exception
    refined = runner().poll(background.waiting_for(at.session_state)["why.inputs"]).result
    assert refined.steps > first.steps and refined.path.error_bound < first.path.error_bound
    shown = " ".join([w.value for w in at.warning] + [c.value for c in at.caption])
    assert f"after {refined.steps} points" in shown or f"({refined.steps} points on the path" in shown


def test_the_redraw_for_a_ready_part_shows_the_stored_view(held):
    """The page's rerun once a part is ready shows every bound widget as the user left it, even when
    Streamlit's widget state outside the progress line's fragment came back reset (in Chromium, with
    the sidebar folded in presenter mode: English, an empty text, presenter mode off)."""
    at = open_page("why", settle=False, prompt=DEFAULT_PROMPT_ZH, lang="zh", presenter=True,
                   method="gradient_x_input")
    assert "why.inputs" in pending_jobs(at)
    held.set()
    runner().wait(pending_jobs(at)["why.inputs"], 60, background.owner(at.session_state))
    for name, reset in (("lang", "en"), ("prompt", ""), ("presenter", False), ("max_tokens", 64)):
        at.session_state[widget_key(name)] = reset                 # what the fragment's run left behind
    at.session_state["_redraw_next"] = True                         # as the progress line does before its rerun
    at.run()
    assert not at.exception
    assert at.sidebar.toggle(key=widget_key("presenter")).value is True
    assert at.sidebar.text_area(key=widget_key("prompt")).value == DEFAULT_PROMPT_ZH
    assert at.sidebar.select_slider(key=widget_key("max_tokens")).value == 256
    assert at.title[0].value == texts("why", "zh")["title"]
    assert len(at.get("plotly_chart")) >= 3                        # the scored words are drawn too
    at.session_state[widget_key("max_tokens")] = 128                # a user's change on a normal run is kept
    at.run()
    assert at.sidebar.select_slider(key=widget_key("max_tokens")).value == 128
