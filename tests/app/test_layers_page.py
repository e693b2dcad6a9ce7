"""AppTest for the Layers page: residual stream, block writes, logit lens."""
import pytest

from explainer.analysis import residual
from explainer.ui.frame.shared import traces_computed
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
from tests.app.conftest import ZH_PROMPT, open_page


@pytest.mark.parametrize("values", [{}, {"prompt": ZH_PROMPT}, {"presenter": True}, {"lang": "zh"}])
def test_layers_page_renders(values):
    at = open_page("layers", **values)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 4                      # growth, lens grid, writes, norms


def test_layers_notice_names_the_first_layer_with_the_answer():
    at = open_page("layers")
    notice = " ".join(m.value for m in at.get("expander")[0].markdown)
    assert "Berlin" in notice and "layer 30" in notice           # the answer appears only at the end
    assert at.metric[0].value == "␣Berlin"                       # a token, by the one rule


def test_layers_in_chinese():
    at = open_page("layers", lang="zh")
    assert at.title[0].value.startswith("逐层")
def test_long_prompt_shows_a_window_slider():
    at = open_page("layers", prompt="one two three four five six seven eight nine ten " * 3)
    assert not at.exception
    slider = at.slider(key=widget_key("window"))
    assert slider.max == len(at.selectbox(key=widget_key("token")).options) - 16
    assert slider.value == slider.max                            # the window holds the last token
    slider.set_value(0).run()
    assert not at.exception and stored(at.session_state, "window") == 0


def test_picking_a_position_reruns_neither_model_nor_lens(monkeypatch):
    at = open_page("layers")
    calls = []
    real = residual.lens_readout
    monkeypatch.setattr(residual, "lens_readout", lambda *a, **k: calls.append(a[2:]) or real(*a, **k))
    misses = traces_computed()
    at.selectbox(key=widget_key("token")).set_value(5).run()
    assert not at.exception
    assert traces_computed() == misses and calls == []      # lens columns were already cached
    assert at.metric[0].value == "."                             # after " Paris" comes "."
