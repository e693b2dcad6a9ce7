"""Direct logit attribution and target resolution on tiny random GPT-2, Llama, Qwen3 and Gemma 3 models."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis.attribution import (LogitAttribution, TargetError, direct_logit_attribution, head_outputs,
                                            predicted_change, resolve_target, top_components)
from explainer.analysis.attribution_norms import freeze_norm
from explainer.analysis.attribution_targets import other_spelling, spellings
from explainer.models import wrap
from tests.conftest import FAMILIES, tiny_hf_model

TEXT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(scope="module", params=FAMILIES)
def tiny_model(request, tokenizer):
    """Each tiny family; GPT-2's biases (which HF starts at 0) get random values, so they are tested."""
    hf_model = tiny_hf_model(request.param, len(tokenizer))
    if request.param == "gpt2":
        with torch.no_grad():
            for name, p in hf_model.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0.0, 0.1)
    return wrap(hf_model, tokenizer, f"tiny-{request.param}-biased")


@pytest.fixture(scope="module")
def traced(tiny_model):
    return explainer.trace(tiny_model, TEXT)


def _final_frozen(model, trace):
    return freeze_norm(model, model.arch.final_norm(model.hf_model), trace.stream(trace.n_layers)[-1])


def _logit_of(model, trace, vector, token):
    """The target logit's share of one residual vector: through the frozen final norm, then W_U[token]."""
    row = model.hf_model.get_output_embeddings().weight[token].double()
    return float(_final_frozen(model, trace).linear(vector) @ row)


# ---------------------------------------------------------------- the parts add up


def test_parts_sum_to_the_models_logit(tiny_model, traced):
    a = direct_logit_attribution(tiny_model, traced)
    logits = traced.next_token_logits
    assert a.target == int(logits.argmax()) and a.contrast is None
    assert a.heads.shape == (tiny_model.n_layers, tiny_model.n_heads) and a.mlps.shape == (tiny_model.n_layers,)
    assert a.total == pytest.approx(float(logits[a.target]), abs=1e-6)
    assert a.heads.sum() + a.mlps.sum() + a.embedding + a.biases == pytest.approx(a.total, abs=1e-4)
    assert np.abs(a.heads).max() > 0 and np.abs(a.mlps).max() > 0      # the pieces are not trivially 0


def test_contrast_splits_the_logit_difference(tiny_model, traced):
    logits = traced.next_token_logits
    second = int(logits.argsort(descending=True)[1])
    a = direct_logit_attribution(tiny_model, traced, contrast=second)
    assert a.contrast == second
    assert a.total == pytest.approx(float(logits[a.target] - logits[second]), abs=1e-6)
    assert a.parts_sum == pytest.approx(a.total, abs=1e-4)
    alone = [direct_logit_attribution(tiny_model, traced, target=t) for t in (a.target, second)]
    np.testing.assert_allclose(a.heads, alone[0].heads - alone[1].heads, atol=1e-9)


def test_heads_of_a_layer_add_up_to_what_attention_added(tiny_model, traced):
    a = direct_logit_attribution(tiny_model, traced)
    for layer in range(traced.n_layers):
        per_head, rest = head_outputs(tiny_model, traced, layer)
        added = traced.attn_out_at(layer)[-1].double()                  # the trace's own recomputation
        torch.testing.assert_close(per_head.sum(0) + rest, added, atol=1e-5, rtol=1e-5)
        through_norm = _logit_of(tiny_model, traced, added - rest, a.target)
        assert a.heads[layer].sum() == pytest.approx(through_norm, abs=1e-5)


def test_mlps_and_embedding_are_what_the_trace_says(tiny_model, traced):
    a = direct_logit_attribution(tiny_model, traced)
    for layer in range(traced.n_layers):
        mlp = traced.mlp_out_at(layer)[-1].double()
        assert a.mlps[layer] == pytest.approx(_logit_of(tiny_model, traced, mlp, a.target), abs=1e-4)
    first = traced.embeddings[-1].double()
    if tiny_model.arch.family == "gpt2":
        first = first + traced.positions[-1].double()                   # GPT-2: token + position
    assert a.embedding == pytest.approx(_logit_of(tiny_model, traced, first, a.target), abs=1e-5)


def test_biases_are_what_no_single_component_owns(tiny_model, traced):
    a = direct_logit_attribution(tiny_model, traced)
    if tiny_model.arch.family == "gpt2":                                # c_proj biases and ln_f's bias
        row = tiny_model.hf_model.get_output_embeddings().weight[a.target].double()
        expected = float(tiny_model.hf_model.transformer.ln_f.bias.double() @ row)
        expected += sum(_logit_of(tiny_model, traced, b.attn.c_proj.bias.double(), a.target)
                        for b in tiny_model.hf_model.transformer.h)
        assert a.biases == pytest.approx(expected, abs=1e-5) and a.biases != 0
    else:                                                               # no biases in these families
        assert a.biases == 0


def test_frozen_norm_reproduces_the_module(tiny_model, traced):
    norm = tiny_model.arch.final_norm(tiny_model.hf_model)
    x = traced.stream(traced.n_layers)[-1]
    frozen = freeze_norm(tiny_model, norm, x)
    with torch.no_grad():
        real = norm(x[None])[0].double()
    torch.testing.assert_close(frozen.linear(x) + frozen.bias, real, atol=1e-5, rtol=1e-5)
    assert frozen.centred == (tiny_model.arch.family == "gpt2")


def test_frozen_norm_refuses_an_unknown_norm(tiny_gpt2):
    class Doubling(torch.nn.Module):
        eps = 1e-5

        def forward(self, x):
            return 2 * x

    with pytest.raises(ValueError, match="does not work like LayerNorm or RMSNorm"):
        freeze_norm(tiny_gpt2, Doubling(), torch.randn(tiny_gpt2.d_model))


# ---------------------------------------------------------------- switched-off components


def test_switched_off_heads_and_mlps_give_exactly_zero(tiny_model):
    off_heads, off_mlps = [(0, 1), (1, 2)], [0]
    t = explainer.trace(tiny_model, TEXT, ablate_heads=off_heads, ablate_mlps=off_mlps)
    a = direct_logit_attribution(tiny_model, t)
    assert a.heads[0, 1] == 0 and a.heads[1, 2] == 0 and a.mlps[0] == 0
    assert a.heads[0, 0] != 0 and a.mlps[1] != 0
    assert a.parts_sum == pytest.approx(float(t.next_token_logits[a.target]), abs=1e-4)


def test_predicted_change_removes_the_direct_pushes(tiny_llama):
    t = explainer.trace(tiny_llama, TEXT)
    a = direct_logit_attribution(tiny_llama, t)
    change = predicted_change(a, heads_off=[(0, 1), (1, 3), (0, 1)], mlps_off=[1])
    assert change == pytest.approx(-(a.heads[0, 1] + a.heads[1, 3] + a.mlps[1]))   # duplicates count once
    assert predicted_change(a) == 0
    with pytest.raises(ValueError, match="no head 9 in layer 0"):
        predicted_change(a, heads_off=[(0, 9)])
    with pytest.raises(ValueError, match="no MLP layer 5"):
        predicted_change(a, mlps_off=[5])


def test_predicted_change_is_exact_where_nothing_else_moves(tiny_model, traced):
    """The last MLP feeds nothing but the final norm, and neither does a last-layer head (without a
    post-norm) once that MLP is off too: with the final norm's scale held, switching them off really
    changes the logit by exactly the predicted amount."""
    a = direct_logit_attribution(tiny_model, traced)
    last = traced.n_layers - 1
    cases = [dict(ablate_mlps=[last])]
    if tiny_model.arch.attn_post_norm(tiny_model.arch.blocks(tiny_model.hf_model)[last]) is None:
        cases.append(dict(ablate_heads=[(last, 1), (last, 2)], ablate_mlps=[last]))
    held = _final_frozen(tiny_model, traced)
    row = tiny_model.hf_model.get_output_embeddings().weight[a.target].double()
    for off in cases:
        t = explainer.trace(tiny_model, TEXT, **off)
        after = float((held.linear(t.stream(t.n_layers)[-1]) + held.bias) @ row)
        predicted = predicted_change(a, heads_off=off.get("ablate_heads", ()), mlps_off=off.get("ablate_mlps", ()))
        assert predicted != 0 and after - a.total == pytest.approx(predicted, abs=1e-4)


# ---------------------------------------------------------------- reading and exporting


def test_top_components_orders():
    heads = np.array([[0.5, -2.0], [0.01, 1.0]])
    a = LogitAttribution(heads, np.array([3.0, -0.2]), 0.0, 0.0, 2.31, 7)
    assert [(c.kind, c.layer, c.head) for c in top_components(a, 3)] == [("mlp", 0, None), ("head", 0, 1),
                                                                         ("head", 1, 1)]
    assert [c.value for c in top_components(a, 2, "up")] == [3.0, 1.0]
    assert [c.value for c in top_components(a, 2, "down")] == [-2.0, -0.2]
    assert [(c.layer, c.head) for c in top_components(a, 2, "idle", kinds=("head",))] == [(1, 0), (0, 0)]
    assert top_components(a, 0) == []
    with pytest.raises(ValueError, match="order must be one of"):
        top_components(a, 3, "biggest")


def test_rows_export_every_component(tiny_llama):
    t = explainer.trace(tiny_llama, TEXT)
    a = direct_logit_attribution(tiny_llama, t)
    rows = a.rows()
    assert len(rows) == 2 + tiny_llama.n_layers * (tiny_llama.n_heads + 1)
    assert {r["component"] for r in rows} == {"embedding", "head", "mlp", "biases"}
    assert sum(r["value"] for r in rows) == pytest.approx(a.total, abs=1e-4)
    head = next(r for r in rows if r["component"] == "head" and r["layer"] == 1 and r["head"] == 2)
    assert head["value"] == a.heads[1, 2]
    json.dumps(rows)                                                    # plain values only


def test_a_trace_needs_its_own_model(tiny_llama, tiny_gemma3):
    t = explainer.trace(tiny_llama, TEXT)
    with pytest.raises(ValueError, match="made by 'tiny-llama', not by 'tiny-gemma3'"):
        direct_logit_attribution(tiny_gemma3, t)


def test_results_are_remembered_and_read_only(tiny_llama):
    t = explainer.trace(tiny_llama, TEXT)
    a = direct_logit_attribution(tiny_llama, t)
    assert direct_logit_attribution(tiny_llama, t) is a
    with pytest.raises(ValueError):
        a.heads[0, 0] = 1.0                                             # shared by every session
    typed = direct_logit_attribution(tiny_llama, t, target=a.target + 1)
    assert typed.target == a.target + 1 and typed is not a


# ---------------------------------------------------------------- what a user types as the target


def test_targets_by_id_and_text(tiny_llama):
    m = tiny_llama                          # a random Llama that reads with SmolLM2's real tokenizer
    assert resolve_target(m, 11452) == 11452 and resolve_target(m, np.int64(11452)) == 11452
    assert resolve_target(m, "#11452") == 11452
    assert resolve_target(m, " Berlin") == 11452
    assert resolve_target(m, "Berlin") == 11452                         # not one token: its spaced form is
    assert resolve_target(m, "2") == m.tokenizer.convert_tokens_to_ids("2")   # digits are token text
    assert spellings("Berlin") == ("Berlin", " Berlin") and spellings(" x") == (" x", "x")
    assert spellings(" ") == (" ",)
    assert other_spelling(m, resolve_target(m, " Paris")) == resolve_target(m, "Paris")


def test_bad_targets_say_what_is_wrong(tiny_llama):
    m = tiny_llama
    with pytest.raises(TargetError, match="empty"):
        resolve_target(m, "")
    with pytest.raises(TargetError, match="no token with id 49152.*0 to 49,151"):
        resolve_target(m, 49152)
    with pytest.raises(TargetError, match="no token with id -1"):
        resolve_target(m, -1)
    with pytest.raises(TargetError, match="no token with id 99999999"):
        resolve_target(m, "#99999999")
    with pytest.raises(TypeError, match="not float"):
        resolve_target(m, 3.0)
    with pytest.raises(TypeError, match="not bool"):
        resolve_target(m, True)
    with pytest.raises(TypeError, match="not NoneType"):
        resolve_target(m, None)


def test_a_word_of_several_tokens_offers_its_first(tiny_llama):
    m = tiny_llama
    with pytest.raises(TargetError) as err:
        resolve_target(m, " Zanzibarian")
    ids = m.tokenizer(" Zanzibarian", add_special_tokens=False)["input_ids"]
    assert len(ids) > 1 and err.value.suggestion == ids[0]
    assert f"is {len(ids)} tokens" in str(err.value) and f"first token '{err.value.pieces[0]}'" in str(err.value)
    assert err.value.pieces[0].startswith(" ") and " + " in str(err.value)
    with pytest.raises(TargetError, match="3 tokens"):
        resolve_target(m, "柏")                                          # SmolLM2 reads Chinese as bytes

