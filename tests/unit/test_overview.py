"""The Overview page's analyses (journey, model card, scale) and figures."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import overview as ov
from explainer.analysis.params import REFERENCE_MODELS
from explainer.figures import overview as figs
from explainer.numbers import human, human_bytes
from explainer.shape import ModelShape
from explainer.tokens import markdown_text
from explainer.view import View

TEXT = "The cat sat on the mat. <b>Bold</b>"
VIEW = View.of("overview")


@pytest.fixture(scope="module")
def traced(tiny_model):
    return tiny_model, explainer.trace(tiny_model, TEXT)


def test_journey_shapes_and_top_prediction(traced):
    model, trace = traced
    j = ov.journey(model, trace, show=3)
    assert (j.n_tokens, j.d_model, j.n_layers, j.vocab_size) == \
        (trace.n_tokens, model.d_model, model.n_layers, model.vocab_size)
    assert j.n_chars == len(TEXT) and j.rotary == (model.arch.family != "gpt2")
    probs = torch.softmax(trace.next_token_logits.double(), -1)
    assert j.next_ids[0] == int(probs.argmax())
    assert j.top_prob == pytest.approx(float(probs.max()), rel=1e-9)
    assert list(j.next_probs) == sorted(j.next_probs, reverse=True) and len(j.next_ids) == 3
    assert j.top_label == model.tokenizer.decode([j.next_ids[0]]).replace("\n", "↵")


def test_model_card_counts_every_parameter_once(tiny_model):
    card = ov.model_card(tiny_model)
    assert card.parameters.total == sum(p.numel() for p in tiny_model.hf_model.parameters())
    assert card.tied_head == {"gpt2": True, "gemma3": True, "llama": False, "qwen3": False}[tiny_model.arch.family]
    if card.tied_head:
        assert card.parameters.by_component["head"] == 0
    else:
        assert card.parameters.by_component["head"] == tiny_model.vocab_size * tiny_model.d_model
    assert (card.n_layers, card.n_heads, card.n_kv_heads, card.d_mlp) == \
        (tiny_model.n_layers, tiny_model.n_heads, tiny_model.n_kv_heads, tiny_model.d_mlp)


def test_scale_orders_by_size_and_marks_this_model(tiny_model):
    sc = ov.scale(ov.model_card(tiny_model))
    assert list(sc.totals) == sorted(sc.totals) and len(sc.names) == len(REFERENCE_MODELS) + 1
    assert sc.names[sc.this_index] == tiny_model.name and sc.this_index == 0     # tiny is smallest
    assert sc.names[-1] == "GPT-3 (175B)" and 170e9 < sc.totals[-1] < 180e9


def test_human_numbers():
    assert human(134_515_008) == "135 M" and human(175e9) == "175 B"
    assert human(1_558_000_000) == "1.56 B" and human(35_136) == "35.1 K" and human(0) == "0"
    assert human_bytes(1536) == "1.5 KB" and human_bytes(100) == "100 B"


def test_markdown_safe():
    assert markdown_text("**x** $5 [a](b)") == r"\*\*x\*\* \$5 \[a\]\(b\)"


def test_journey_figure_structure_and_escaping(traced):
    model, trace = traced
    j = ov.journey(model, trace)
    fig = figs.journey_figure(j, VIEW)
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == len(figs.STAGES) == 8
    texts_shown = " ".join(a.text for a in fig.layout.annotations)
    assert f"[{j.n_tokens} × {j.d_model}]" in texts_shown
    assert f"[{j.n_tokens} × {j.vocab_size:,}]" in texts_shown
    assert f"× {j.n_layers}" in texts_shown
    hover = fig.data[0]
    assert len(hover.customdata) == 8 and hover.hovertemplate.startswith("%{customdata}")
    assert f"{j.next_probs[0]:.2%}" in hover.customdata[-1]            # exact probability on hover
    boxes = figs.journey_boxes(j, VIEW)
    assert boxes[0][0] == "Text" and "<b>" not in boxes[0][1]            # the user's "<b>" is escaped


def test_journey_text_is_escaped():
    shape = ModelShape(n_layers=2, n_heads=2, n_kv_heads=2, head_dim=4, d_model=8, d_mlp=16, vocab_size=100,
                       context_length=64)
    j = ov.Journey(text="<script>x</script>", n_chars=18, n_tokens=3, shape=shape, rotary=False, next_ids=(1,),
                   next_labels=("<0xE7>",), next_probs=(0.5,))
    boxes = figs.journey_boxes(j, VIEW)
    joined = " ".join(" ".join(b) for b in boxes)
    assert "<script" not in joined and "&lt;script" in joined and "&lt;0xE7&gt;" in joined
    assert "+ position vectors" in boxes[2][2]                          # learned positions (GPT-2)


def test_parameter_and_scale_figures(tiny_model):
    card = ov.model_card(tiny_model)
    fig = figs.parameters_figure(card, VIEW)
    bar = fig.data[0]
    assert list(bar.x) == list(card.parameters.by_component.values())
    assert "%{x:,}" in bar.hovertemplate
    sc = ov.scale(card)
    sfig = figs.scale_figure(sc, VIEW)
    assert sfig.layout.xaxis.type == "log" and list(sfig.data[0].x) == list(sc.totals)
    assert "this model" in sfig.data[0].y[sc.this_index]
