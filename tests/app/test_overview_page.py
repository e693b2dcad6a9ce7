"""AppTest for the Overview page (the app's default page: set values through the URL)."""
import pytest

from explainer.ui.frame.shared import traces_computed
from explainer.ui.frame.binding import widget_key
from tests.app.conftest import ZH_PROMPT, open_page


def _overview(**query):
    return open_page("overview", query={k: str(v) for k, v in query.items()})


SMOLLM2_CARD = ("30", "576", "49,152", "9 / 3")
GEMMA3_CARD = ("18", "640", "262,144", "4 / 1")


@pytest.mark.parametrize("query,card", [({}, SMOLLM2_CARD), ({"prompt": ZH_PROMPT}, SMOLLM2_CARD),
                                        ({"presenter": "1"}, SMOLLM2_CARD), ({"lang": "zh"}, GEMMA3_CARD),
                                        ({"lang": "zh", "model": "smollm2-135m"}, SMOLLM2_CARD)])
def test_overview_renders(query, card):
    """中文 with no model chosen reads with the multilingual Gemma 3; a chosen model is kept."""
    at = _overview(**query)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3                      # journey, parameters, scale
    values = [m.value for m in at.metric]
    assert all(v in values for v in card), values


def test_overview_notice_names_the_prediction():
    at = _overview()
    notice = " ".join(m.value for m in at.get("expander")[0].markdown)
    assert "12 tokens" in notice and "Berlin" in notice


def test_overview_in_chinese():
    at = _overview(lang="zh")
    assert at.title[0].value.startswith("总览")


@pytest.mark.parametrize("query, shape", [({}, "[12 × 576]"), ({"lang": "zh"}, "[9 × 640]"),
                                          ({"prompt": ZH_PROMPT}, "[27 × 576]")])
def test_the_introductions_example_is_the_diagrams_own_shape(query, shape):
    """The introduction explains a shape with the one the diagram under it shows, for this model and text."""
    at = _overview(**query)
    intro = " ".join(m.value for m in at.markdown)
    journey = at.get("plotly_chart")[0].proto.spec
    assert f"`{shape}`" in intro and shape in journey, (shape, intro[:400])
def test_language_switch_keeps_a_chosen_model_and_text_without_rerunning():
    at = _overview(model="smollm2-135m", prompt="The cat sat on the")
    misses = traces_computed()
    at.sidebar.radio(key=widget_key("lang")).set_value("zh").run()
    assert not at.exception
    assert at.title[0].value.startswith("总览")
    assert traces_computed() == misses                           # same model, same text: no new pass
    assert at.sidebar.text_area(key=widget_key("prompt")).value == "The cat sat on the"


def test_language_switch_moves_defaults_to_chinese_and_the_multilingual_model():
    at = _overview()
    at.sidebar.radio(key=widget_key("lang")).set_value("zh").run()
    assert not at.exception
    assert at.sidebar.text_area(key=widget_key("prompt")).value == ZH_PROMPT
    assert at.sidebar.selectbox(key=widget_key("model_choice")).value == "gemma-3-270m"
    assert "18" in [m.value for m in at.metric]                  # Gemma 3's 18 layers
    at.sidebar.radio(key=widget_key("lang")).set_value("en").run()
    assert at.sidebar.selectbox(key=widget_key("model_choice")).value == "smollm2-135m"
    assert "30" in [m.value for m in at.metric]
