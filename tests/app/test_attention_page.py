"""AppTest for the Attention page: heatmap, head grid, arcs, q·k steps, head statistics."""
import pytest

from explainer.analysis import attention as att
from explainer.ui.resources import _trace_cache
from tests.app.conftest import ZH_PROMPT, open_page

N_CHARTS = 5                      # heatmap, head grid, arcs, q·k steps, head statistics


@pytest.mark.parametrize("values", [{}, {"prompt": ZH_PROMPT}, {"presenter": True}, {"lang": "zh"}])
def test_attention_page_renders(values):
    at = open_page("attention", **values)
    assert not at.exception
    assert len(at.get("plotly_chart")) == N_CHARTS
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
    assert at.slider(key="w_layer").value == 17 and at.slider(key="w_head").value == 5
    assert at.session_state["v_layer"] == 17 and at.session_state["v_head"] == 5


def test_view_controls_do_not_rerun_the_model(monkeypatch):
    at = open_page("attention")
    misses = _trace_cache().misses
    calls = []
    real = att.head_stats
    monkeypatch.setattr(att, "head_stats", lambda tr: calls.append(tr) or real(tr))
    at.slider(key="w_head").set_value(3).run()
    at.slider(key="w_layer").set_value(4).run()
    at.selectbox(key="w_token").set_value(5).run()
    assert not at.exception
    assert _trace_cache().misses == misses
    assert calls == []                                            # head statistics were cached for this trace
    assert at.session_state["v_token"] == 5
