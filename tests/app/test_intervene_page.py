"""Intervene: switching parts off changes the prediction for this view only."""
import pytest
import torch

import explainer
from explainer.ui.resources import cached_traces
from tests.app.conftest import ZH_PROMPT, open_page


def test_nothing_off_shows_a_hint_and_no_error():
    at = open_page("intervene")
    assert not at.exception
    assert at.info and not at.get("plotly_chart")


def test_switching_off_layer0_mlp_changes_the_prediction_and_back_restores_it():
    at = open_page("intervene", mlp_off="0")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1
    before, after = at.metric[0].value, at.metric[1].value
    assert before == "␣Berlin" and after != before               # tokens, by the one rule
    at.multiselect[1].set_value([]).run()              # switch it back on
    assert not at.exception and not at.get("plotly_chart")
    assert at.query_params.get("mlp_off") in (None, [], "")


def test_heads_from_the_url_and_bad_values_ignored():
    at = open_page("intervene", query={"off": "0.1,99.99,x"})
    assert not at.exception
    assert any("99.99" in i.value and "x" in i.value for i in at.info)
    assert at.multiselect[0].value == [(0, 1)]


@pytest.mark.integration
def test_other_sessions_see_the_unmodified_model(default_model):
    prompt = "The capital of France is Paris. The capital of Germany is"
    normal = explainer.trace(default_model, prompt, 256)
    at = open_page("intervene", off="0.0,0.1,0.2,0.3", mlp_off="0,1")
    assert not at.exception
    again = explainer.trace(default_model, prompt, 256)
    assert torch.equal(again.logits, normal.logits)
    cached = [key for key, _ in cached_traces() if key.text == prompt and not key.ablate_heads and not key.ablate_mlps]
    assert cached, "the unablated trace stays cached for everyone"


@pytest.mark.integration
def test_switching_off_heads_changes_the_prediction_and_back_restores_it(default_model):
    prompt = "The capital of France is Paris. The capital of Germany is"
    normal = explainer.trace(default_model, prompt, 256)
    heads = ",".join(f"{layer}.{head}" for layer in range(4) for head in range(default_model.n_heads))
    at = open_page("intervene", off=heads)
    assert not at.exception
    assert len(at.multiselect[0].value) == 4 * default_model.n_heads
    moved = float(at.metric[2].value.rstrip("%"))
    assert moved > 1.0, at.metric[2].value                     # a real change in the distribution
    ablated = [v for k, v in cached_traces() if k.text == prompt and k.ablate_heads]
    assert ablated and not torch.equal(ablated[0].next_token_logits, normal.next_token_logits)
    assert torch.allclose(ablated[0].next_token_logits,
                          explainer.trace(default_model, prompt, 256, ablate_heads=ablated[0].ablated_heads)
                          .next_token_logits)
    other = open_page("next_token")                            # another user meanwhile
    assert not other.exception
    at.multiselect[0].set_value([]).run()                      # switch them back on
    assert not at.exception and not at.get("plotly_chart") and at.info
    assert at.query_params.get("off") in (None, [], "")
    again = explainer.trace(default_model, prompt, 256)
    assert torch.equal(again.next_token_logits, normal.next_token_logits)   # restored exactly


def test_chinese_prompt_and_interface_with_a_head_off():
    at = open_page("intervene", prompt=ZH_PROMPT, lang="zh", off="3.0,3.1", mlp_off="1")
    assert not at.exception
    assert at.title[0].value.startswith("干预")
    assert len(at.get("plotly_chart")) == 1 and len(at.metric) == 3
