"""Why this answer? results and figures on tiny random models of every family: labels, the parts'
sum, predicted beside measured, and the figures' structure (signed scale centred on 0, hovers)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis.attribution import predicted_change, top_components
from explainer.analysis.attribution_inputs import input_attribution
from explainer.analysis.why import answer_pushes, switch_off_check
from explainer.figures import why as figs
from explainer.tokens import token_labels
from explainer.view import View

TEXT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(scope="module")
def traced(tiny_model):
    return explainer.trace(tiny_model, TEXT)


def test_pushes_carry_the_answer_and_add_up(tiny_model, traced):
    p = answer_pushes(tiny_model, traced)
    a = p.attribution
    probs = torch.softmax(traced.next_token_logits.double(), -1)
    assert p.target_label == token_labels(tiny_model, [int(probs.argmax())])[0]
    assert p.probability == pytest.approx(float(probs.max()))
    assert a.parts_sum == pytest.approx(a.total, abs=1e-4)
    assert all(c.kind == "head" and c.value > 0 for c in p.top_heads) and len(p.top_heads) <= 3
    assert [c.value for c in p.top_heads] == sorted((c.value for c in p.top_heads), reverse=True)
    rows = p.rows()
    assert len(rows) == 2 + tiny_model.n_layers * (tiny_model.n_heads + 1)
    assert {r["answer"] for r in rows} == {p.target_label}
    json.dumps(rows)


def test_contrast_splits_the_difference(tiny_model, traced):
    second = int(traced.next_token_logits.topk(2).indices[1])
    p = answer_pushes(tiny_model, traced, contrast=second)
    logits = traced.next_token_logits.double()
    assert p.attribution.total == pytest.approx(float(logits[p.attribution.target] - logits[second]), abs=1e-5)
    assert p.contrast_label == token_labels(tiny_model, [second])[0] and p.contrast_probability is not None


def test_switch_off_check_measures_what_the_forward_did(tiny_model, traced):
    p = answer_pushes(tiny_model, traced)
    heads = [(c.layer, c.head) for c in top_components(p.attribution, 2, "abs", kinds=("head",))]
    after = explainer.trace(tiny_model, TEXT, ablate_heads=heads, ablate_mlps=[0])
    check = switch_off_check(p, after)
    target = p.attribution.target
    assert check.logit_after == pytest.approx(float(after.next_token_logits[target]), abs=1e-5)
    assert check.measured == pytest.approx(check.logit_after - p.attribution.total)
    assert check.predicted == pytest.approx(predicted_change(p.attribution, heads, [0]))
    assert check.heads_off == tuple(sorted(heads)) and check.mlps_off == (0,)
    assert check.probability_after == pytest.approx(float(torch.softmax(after.next_token_logits.double(), -1)[target]))
    assert set(check.rows()) >= {"predicted_change", "measured_change", "heads_off"}


def test_figures_are_signed_centred_and_hover_the_values(tiny_model, traced):
    view = View.of("why", "en")
    p = answer_pushes(tiny_model, traced)
    heads = figs.heads_figure(p, view)
    assert heads.data[0].zmid == 0 and heads.data[0].zmin == -heads.data[0].zmax
    assert np.asarray(heads.data[0].z).shape == (tiny_model.n_layers, tiny_model.n_heads)
    assert "%{z:+.3f}" in heads.data[0].hovertemplate
    assert len(heads.layout.shapes) == len(p.top_heads)
    mlps = figs.mlps_figure(p, view)
    assert len(mlps.data[0].customdata) == tiny_model.n_layers + 2               # embedding, each MLP, biases
    assert sum(mlps.data[0].y) + p.attribution.heads.sum() == pytest.approx(p.attribution.total, abs=1e-2)
    zh = figs.heads_figure(p, View.of("why", "zh"))
    assert "第 %{y} 层" in zh.data[0].hovertemplate and "{layer}" not in zh.data[0].hovertemplate


def test_input_chips_and_bars(tiny_model):
    r = input_attribution(tiny_model, "猫 sat", method="gradient_x_input")
    view = View.of("why", "en")
    chips = figs.inputs_html(r, view)
    assert chips.count('class="tok"') == len(r.tokens)
    assert "猫" in chips                                                   # a character split over tokens, shown whole
    bars = figs.inputs_figure(r, view)
    assert list(bars.data[0].y) == pytest.approx(list(np.round(100 * r.scores, 3)))
    assert "Gradient" in bars.layout.title.text


def test_switch_off_figure(tiny_model, traced):
    p = answer_pushes(tiny_model, traced)
    check = switch_off_check(p, explainer.trace(tiny_model, TEXT, ablate_mlps=[0]))
    fig = figs.switch_off_figure(check, View.of("why", "zh"))
    assert list(fig.data[0].y) == ["预测", "实测"]
    assert list(fig.data[0].x) == pytest.approx([check.predicted, check.measured], abs=1e-4)
