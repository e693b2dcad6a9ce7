import pytest

from explainer.ui.frame import shared
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
from tests.app.conftest import PROMPTS, open_page


@pytest.mark.parametrize("which", ["default", "chinese"])
def test_mlp_page_renders(which):
    values = {} if PROMPTS[which] is None else {"prompt": PROMPTS[which]}
    at = open_page("mlp", **values)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 5
    assert "SwiGLU" in at.info[0].value                # the default model is a Llama
def test_mlp_page_presenter_and_chinese():
    at = open_page("mlp", presenter=True, lang="zh")
    assert not at.exception
    assert at.title[0].value.startswith("MLP")
    assert "门" in at.info[0].value
    assert len(at.get("plotly_chart")) == 5


def test_mlp_view_controls_do_not_rerun_the_model():
    at = open_page("mlp", layer=3)
    misses = shared.traces_computed()
    at.slider[-1].set_value(20).run()                  # the layer slider (the sidebar's come first)
    assert not at.exception
    box = at.selectbox(key=widget_key("neuron"))
    third = int(box.options[2].split()[-1])            # options read "neuron 993"
    box.set_value(third).run()
    assert not at.exception
    assert stored(at.session_state, "neuron") == third
    assert shared.traces_computed() == misses
    assert stored(at.session_state, "layer") == 20
    assert at.query_params.get("layer") == "20"          # deep link


def test_mlp_deep_link_to_any_neuron():
    at = open_page("mlp", layer=5, neuron=1234)
    assert not at.exception
    assert at.selectbox(key=widget_key("neuron")).value == 1234
