"""AppTest for the Position page: rotary (default model) and learned (random GPT-2) positions."""
import pytest

from explainer.ui.frame.shared import traces_computed
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
from tests.app.conftest import ZH_PROMPT, open_page


@pytest.mark.parametrize("values", [{}, {"prompt": ZH_PROMPT}, {"presenter": True}, {"lang": "zh"}])
def test_position_page_renders_rotary(values):
    at = open_page("position", **values)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3                      # frequencies, distance curve, real scores
    assert "RoPE" in at.markdown[0].value or any("RoPE" in m.value for m in at.markdown)


def test_position_page_learned_positions():
    at = open_page("position", model="random-gpt2")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3                      # added norms, vectors, similarity
    assert any("learned positions" in m.value for m in at.markdown)


def test_position_in_chinese():
    at = open_page("position", lang="zh")
    assert at.title[0].value.startswith("位置")
def test_view_controls_do_not_rerun_the_model():
    at = open_page("position")
    misses = traces_computed()
    at.slider(key=widget_key("layer")).set_value(7).run()
    at.slider(key=widget_key("head")).set_value(2).run()
    at.selectbox(key=widget_key("token")).set_value(3).run()
    assert not at.exception
    assert traces_computed() == misses
    assert stored(at.session_state, "layer") == 7 and stored(at.session_state, "token") == 3
