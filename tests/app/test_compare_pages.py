"""Compare under Attention, Layers and Next token: a second prompt, or the untrained model."""
import pytest

from explainer.text import texts
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
from tests.app.conftest import open_page

PAGES = ["layers", "attention", "next_token"]


@pytest.mark.parametrize("page", PAGES)
def test_compare_with_the_untrained_model(page):
    at = open_page(page, compare="@untrained")
    assert not at.exception, at.exception
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert any("compare" in k for k in keys), keys


@pytest.mark.parametrize("page", PAGES)
def test_compare_with_a_second_prompt(page):
    at = open_page(page, compare="The capital of Italy is Rome. The capital of Spain is")
    assert not at.exception, at.exception
    assert any("compare" in c.proto.id for c in at.get("plotly_chart"))


def test_compare_off_by_default_and_switchable():
    at = open_page("layers")
    assert not any("compare" in c.proto.id for c in at.get("plotly_chart"))
    at.radio(key=widget_key("cmp_mode")).set_value("untrained").run()
    assert not at.exception
    assert stored(at.session_state, "compare") == "@untrained"
    assert any("compare" in c.proto.id for c in at.get("plotly_chart"))


def test_layers_compare_reports_both_answers():
    at = open_page("layers", compare="@untrained")
    labels = [m.label for m in at.metric]
    assert "this prompt" in labels and "untrained model" in labels
    assert at.metric[labels.index("this prompt")].value == "␣Berlin"          # a token, by the one rule


def test_empty_second_prompt_is_friendly():
    at = open_page("next_token", compare=" ")
    assert not at.exception
    assert any(i.value == texts("compare", "en")["empty"] for i in at.info)    # says what to do
    assert not any("compare_next" in c.proto.id for c in at.get("plotly_chart"))   # and draws no comparison
    assert len(at.get("plotly_chart")) == 3                                   # the page itself is all there
