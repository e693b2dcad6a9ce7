"""Why this answer? On first open: each head's and MLP layer's push, the words scored, a sentence
naming the top parts; choosing the answer; switching parts off (measured beside predicted)."""
import pytest
import torch

import explainer
from explainer.analysis.attribution import direct_logit_attribution, top_components
from explainer.text import texts
from explainer.ui.frame.shared import cached_traces
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
from tests.app.conftest import ZH_PROMPT, open_page

PROMPT = "The capital of France is Paris. The capital of Germany is"


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.integration
def test_first_open_names_the_heads_that_push_most(default_model):
    at = open_page("why")
    assert not at.exception
    t = texts("why", "en")
    assert _metrics(at)[t["answer"]] == "␣Berlin"                        # tokens by the one rule
    assert len(at.get("plotly_chart")) == 3                              # heads, MLP layers, the words
    a = direct_logit_attribution(default_model, explainer.trace(default_model, PROMPT, 256))
    first = top_components(a, 1, "up", kinds=("head",))[0]
    sentence = at.info[0].value
    assert sentence.startswith(f"**Head {first.layer}.{first.head}**"), sentence
    assert "Germany" in sentence                                         # the word that matters most
    chips = "".join(h.proto.body for h in at.get("html"))
    assert chips.count('class="tok"') == 12                              # every token scored
    assert float(_metrics(at)[t["logit"]]) == pytest.approx(a.total, abs=0.01)
    assert at.caption[0].value.endswith(f"= {a.total:.2f}, the model's own score.")
    assert t["nothing_off"] in [c.value for c in at.caption]


def test_switching_off_an_mlp_shows_measured_beside_predicted_and_back_restores():
    at = open_page("why", mlp_off="0")
    assert not at.exception
    t, metrics = texts("why", "en"), _metrics(at)
    assert float(metrics[t["measured"]]) != 0.0 and t["predicted"] in metrics
    assert len(at.get("plotly_chart")) == 5                              # + predicted vs measured, the distribution
    at.multiselect(key=widget_key("mlp_off")).set_value([]).run()        # switch it back on
    assert not at.exception and len(at.get("plotly_chart")) == 3
    assert at.query_params.get("mlp_off") in (None, [], "")


@pytest.mark.integration
def test_top_heads_matter_more_than_idle_heads_on_the_page(default_model):
    t = texts("why", "en")
    at = open_page("why")
    at.button(key="why_off_top").click().run()
    assert not at.exception
    top = float(_metrics(at)[t["prob_after"].format(answer="␣Berlin")].rstrip("%"))
    off = stored(at.session_state, "off")
    a = direct_logit_attribution(default_model, explainer.trace(default_model, PROMPT, 256))
    assert off == ",".join(f"{c.layer}.{c.head}" for c in sorted(top_components(a, 3, "up", kinds=("head",)),
                                                                  key=lambda c: (c.layer, c.head)))
    at.button(key="why_off_idle").click().run()
    idle = float(_metrics(at)[t["prob_after"].format(answer="␣Berlin")].rstrip("%"))
    assert top < idle - 5, (top, idle)                                   # the attribution pointed at real work
    at.button(key="why_off_none").click().run()
    assert stored(at.session_state, "off") == "" and len(at.get("plotly_chart")) == 3


def test_bad_heads_in_the_link_are_ignored_with_a_notice():
    at = open_page("why", query={"off": "0.1,99.99,x"})
    assert not at.exception
    assert any("99.99" in i.value and "x" in i.value for i in at.info)
    assert at.multiselect(key=widget_key("off")).value == [(0, 1)]


def test_typed_answer_and_contrast_from_the_link():
    t = texts("why", "en")
    at = open_page("why", query={"target": "Paris", "contrast": "Berlin", "method": "gradient_x_input"})
    assert not at.exception
    metrics = _metrics(at)
    assert metrics[t["answer"]] == "Paris"                                # the exact text is a token: taken as is
    assert t["logit_gap"] in metrics and float(metrics[t["logit_gap"]]) < 0   # Paris is less likely than ␣Berlin
    assert "Paris" in at.get("plotly_chart")[0].proto.spec and "Berlin" in at.get("plotly_chart")[0].proto.spec
    assert at.query_params.get("target") == "Paris"                       # the link keeps what was typed
    at.selectbox(key=widget_key("contrast")).set_value("").run()          # compare with nothing
    assert t["logit"] in _metrics(at) and at.query_params.get("contrast") in (None, [], "")


@pytest.mark.parametrize("typed, words", [("Zanzibar", "3 tokens"), ("#99999999", "run from 0 to 49,151")])
def test_a_bad_answer_gets_a_message_and_the_top_prediction(typed, words):
    at = open_page("why", target=typed)
    assert not at.exception
    assert at.warning and words in at.warning[0].value, [w.value for w in at.warning]
    assert _metrics(at)[texts("why", "en")["answer"]] == "␣Berlin"
    assert stored(at.session_state, "target") == typed                     # nothing the user typed is lost


def test_a_word_of_several_tokens_offers_its_first_token():
    at = open_page("why", target="Zanzibar", method="occlusion")
    at.button(key="why_use_first").click().run()
    assert not at.exception and not at.warning
    assert at.metric[0].value == "Z" and stored(at.session_state, "target").startswith("#")


def test_picking_another_answer_from_the_top_ten():
    at = open_page("why")
    box = at.selectbox(key=widget_key("target"))
    second = box.options[1]
    box.select_index(1).run()
    assert not at.exception
    assert at.metric[0].value in second                                    # e.g. "␣Berl · 1.2%"
    assert stored(at.session_state, "target").startswith("#")


@pytest.mark.integration
def test_other_sessions_see_the_unmodified_model(default_model):
    normal = explainer.trace(default_model, PROMPT, 256)
    at = open_page("why", off="0.0,0.1,0.2,0.3", mlp_off="0,1")
    assert not at.exception
    again = explainer.trace(default_model, PROMPT, 256)
    assert torch.equal(again.logits, normal.logits)
    cached = [key for key, _ in cached_traces() if key.text == PROMPT and not key.ablate_heads and not key.ablate_mlps]
    assert cached, "the unablated trace stays cached for everyone"


def test_chinese_interface_with_gemma():
    at = open_page("why", prompt=ZH_PROMPT, lang="zh", off="3.0,3.1", mlp_off="1")
    assert not at.exception
    assert at.title[0].value.startswith("为什么")
    assert at.metric[0].value == "柏"
    assert len(at.get("plotly_chart")) == 5
    assert "第" in at.info[0].value and "**" in at.info[0].value         # bold closes (checked in the browser too)


def test_text_too_long_for_word_scores_keeps_the_rest():
    long = "The cat sat on the mat. " * 60                                 # ~360 tokens
    at = open_page("why", prompt=long, max_tokens=1024)
    assert not at.exception
    assert any("at most 256 tokens" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 2                                # heads and MLP layers still shown


def test_untrained_gpt2_with_biases():
    at = open_page("why", model="random-gpt2")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3
    assert "biases" in at.caption[0].value
