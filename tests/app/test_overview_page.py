"""AppTest for the Overview page (the app's default page: set values through the URL)."""
import pytest

from explainer.ui.resources import traces_computed
from explainer.ui.state import widget_key
from tests.app.conftest import ZH_PROMPT, open_page


def _overview(**query):
    return open_page("overview", query={k: str(v) for k, v in query.items()})


@pytest.mark.parametrize("query", [{}, {"prompt": ZH_PROMPT}, {"presenter": "1"}, {"lang": "zh"}])
def test_overview_renders(query):
    at = _overview(**query)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3                      # journey, parameters, scale
    values = [m.value for m in at.metric]
    assert "30" in values and "576" in values and "49,152" in values and "9 / 3" in values


def test_overview_notice_names_the_prediction():
    at = _overview()
    notice = " ".join(m.value for m in at.get("expander")[0].markdown)
    assert "12 tokens" in notice and "Berlin" in notice


def test_overview_in_chinese():
    at = _overview(lang="zh")
    assert at.title[0].value.startswith("总览")
def test_language_switch_does_not_rerun_the_model():
    at = _overview()
    misses = traces_computed()
    at.sidebar.radio(key=widget_key("lang")).set_value("zh").run()
    assert not at.exception
    assert at.title[0].value.startswith("总览")
    assert traces_computed() == misses
