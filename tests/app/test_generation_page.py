import pytest

from explainer.ui.frame import shared
from tests.app.conftest import PROMPTS, open_page


def _buttons(at):
    return [b for b in at.button if not b.key or not b.key.startswith(("example_", "dl_"))]


def _full_text(at):
    return at.code[-1].value


@pytest.mark.parametrize("which", ["default", "chinese"])
def test_generation_page_renders_first_step(which):
    values = {} if PROMPTS[which] is None else {"prompt": PROMPTS[which]}
    at = open_page("generation", **values)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2
    assert len(at.session_state["gen_run"]["steps"]) == 1
    if which == "default":
        assert _full_text(at).endswith(" Berlin")          # greedy: the model's top choice


def test_step_play_reset_and_no_trace_rerun():
    at = open_page("generation", model="random-gpt2")      # the small model keeps this test fast
    misses = shared.traces_computed()
    step, play, reset = _buttons(at)[:3]
    step.click().run()
    assert not at.exception and len(at.session_state["gen_run"]["steps"]) == 2
    at.select_slider(key="gen_play_n").set_value(5).run()
    _buttons(at)[1].click().run()
    assert not at.exception and len(at.session_state["gen_run"]["steps"]) == 7
    text = _full_text(at)
    assert len(at.get("plotly_chart")) == 2
    _buttons(at)[2].click().run()
    assert not at.exception and at.session_state["gen_run"]["steps"] == []
    assert any("Step" in i.value for i in at.info)
    assert shared.traces_computed() == misses       # generation never re-traces the prompt
    at2 = open_page("generation", model="random-gpt2")     # greedy is deterministic
    at2.select_slider(key="gen_play_n").set_value(5).run()
    _buttons(at2)[0].click().run()
    _buttons(at2)[1].click().run()
    assert _full_text(at2) == text


def test_sampling_with_a_seed_is_reproducible():
    texts = []
    for _ in range(2):
        at = open_page("generation", model="random-gpt2", decode="sample", seed=3, temp=1.2)
        at.select_slider(key="gen_play_n").set_value(5).run()
        _buttons(at)[1].click().run()
        assert not at.exception
        texts.append(_full_text(at))
        assert at.query_params.get("seed") == "3" and at.query_params.get("decode") == "sample"
    assert texts[0] == texts[1]
    other = open_page("generation", model="random-gpt2", decode="sample", seed=4, temp=1.2)
    other.select_slider(key="gen_play_n").set_value(5).run()
    _buttons(other)[1].click().run()
    assert _full_text(other) != texts[0]                   # another seed, another text
def test_generation_presenter_and_chinese():
    at = open_page("generation", presenter=True, lang="zh")
    assert not at.exception
    assert at.title[0].value.startswith("生成")
    assert len(at.get("plotly_chart")) == 2
