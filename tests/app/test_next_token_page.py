import math

import pytest

from explainer.ui.frame import shared
from explainer.ui.frame.binding import widget_key
from tests.app.conftest import PROMPTS, open_page


def _metric(at, i):
    return at.metric[i].value


@pytest.mark.parametrize("which", ["default", "chinese"])
def test_next_token_page_renders(which):
    values = {} if PROMPTS[which] is None else {"prompt": PROMPTS[which]}
    at = open_page("next_token", **values)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3                 # distribution, top-p curve, trained vs random
    if which == "default":
        assert "Berlin" in _metric(at, 0)
    note = next(c.value for c in at.caption if " bits" in c.value)       # the untrained model's note
    untrained = float(note.split(" bits")[0].split()[-1])
    assert abs(untrained - math.log2(49152)) < 1.0          # the random model is nearly uniform


def test_next_token_settings_from_url_reshape_and_do_not_rerun():
    at = open_page("next_token", query={"top_k": "3"})
    assert not at.exception
    assert _metric(at, 3) == "3"                            # tokens left after top-k
    misses = shared.traces_computed()
    at.slider(key=widget_key("top_k")).set_value(0).run()
    at.slider(key=widget_key("top_p")).set_value(0.5).run()
    assert not at.exception
    assert shared.traces_computed() == misses       # view controls never re-run the model
    assert at.query_params.get("top_p") == "0.5"
    assert _metric(at, 3) not in ("3", "49,152")
def test_next_token_presenter_and_chinese():
    at = open_page("next_token", presenter=True, lang="zh")
    assert not at.exception
    assert at.title[0].value.startswith("下一个词元")
    assert len(at.get("plotly_chart")) == 3


def test_next_token_on_the_random_model_itself():
    at = open_page("next_token", model="random-gpt2")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2
    assert any("untrained" in i.value for i in at.info)
