"""AppTest for the Attention page: heatmap, head grid, arcs, q·k steps, head statistics."""
import pytest

from explainer.analysis import attention as att
from explainer.ui.resources import traces_computed
from explainer.ui.state import stored, widget_key
from tests.app.conftest import ZH_PROMPT, open_page

N_CHARTS = 5                      # heatmap, head grid, arcs, q·k steps, head statistics


@pytest.mark.parametrize("values", [{}, {"prompt": ZH_PROMPT}, {"presenter": True}, {"lang": "zh"}])
def test_attention_page_renders(values):
    at = open_page("attention", **values)
    assert not at.exception
    windowed = values.get("lang") == "zh"                         # 中文 reads with Gemma 3: + its mask picture
    assert len(at.get("plotly_chart")) == N_CHARTS + windowed
    assert any("e-0" in c.value for c in at.caption)             # the recomputation check is shown


def test_attention_in_chinese():
    at = open_page("attention", lang="zh")
    assert at.title[0].value.startswith("注意力")
    assert any(b.label.startswith("归纳头") for b in at.button)
def test_jump_button_sets_layer_and_head():
    at = open_page("attention")
    label = next(b.label for b in at.button if b.key == "jump_induction")
    assert label == "induction head: L17 H5"                      # on the default prompt
    at.button(key="jump_induction").click().run()
    assert not at.exception
    assert at.slider(key=widget_key("layer")).value == 17 and at.slider(key=widget_key("head")).value == 5
    assert stored(at.session_state, "layer") == 17 and stored(at.session_state, "head") == 5


def test_view_controls_do_not_rerun_the_model(monkeypatch):
    at = open_page("attention")
    misses = traces_computed()
    calls = []
    real = att.head_stats
    monkeypatch.setattr(att, "head_stats", lambda tr: calls.append(tr) or real(tr))
    at.slider(key=widget_key("head")).set_value(3).run()
    at.slider(key=widget_key("layer")).set_value(4).run()
    at.selectbox(key=widget_key("token")).set_value(5).run()
    assert not at.exception
    assert traces_computed() == misses
    assert calls == []                                            # head statistics were cached for this trace
    assert stored(at.session_state, "token") == 5
