"""AppTest for the Attention page: heatmap, head grid, arcs, q·k steps, head statistics."""
import pytest

from explainer.analysis import attention as att
from explainer.ui.frame.shared import traces_computed
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
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


def test_a_long_text_shows_the_estimate_first_then_the_exact_maps(monkeypatch):
    """Past EXACT_ROWS tokens the page draws the even-sample estimate (flagged), then replaces it with
    the exact maps; here 'long' is made short so the test stays fast."""
    from explainer.analysis import head_rows
    from explainer.memo import recall
    from explainer.ui.frame.shared import cached_traces

    monkeypatch.setattr(head_rows, "EXACT_ROWS", 6)
    monkeypatch.setattr(head_rows, "SAMPLED_ROWS", 4)
    prompt = "A long text is only long for this test: every head is read twice here."
    at = open_page("attention", prompt=prompt)
    assert not at.exception
    trace = next(tr for key, tr in cached_traces() if key.text == prompt)
    estimate = recall(trace, ("head_stats", True))
    assert estimate is not None and estimate.sampled and estimate.rows_read == 4       # drawn first
    assert att.head_stats_ready(trace) and not att.cached_head_stats(trace).sampled   # then replaced
    assert len(at.get("plotly_chart")) == N_CHARTS                                     # the estimate is gone
    assert not any("positions, spread evenly" in c.value for c in at.caption)
