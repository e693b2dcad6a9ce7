"""MLP analyses against independent computations on the tiny GPT-2 and Llama fixtures."""
from dataclasses import replace

import pytest
import torch

import explainer
from explainer.analysis import mlp
from explainer.figures import mlp as figs
from explainer.view import View

TEXT = "The cat sat on the mat. The dog sat on the log."
T = {k: k for k in ("activation", "layer", "neuron", "token", "peak_at", "overview_title", "axis_rank",
                    "axis_neuron", "pushes_up", "pushes_down", "logit_change")}
T.update(capped="cap {cap}", heatmap_title="L{layer}", token_title="{token} L{layer}", effect_title="L{layer} n{neuron}",
         fires_title="L{layer} n{neuron}")
VIEW = View(T, {})


@pytest.fixture(scope="module")
def traced(tiny_model):
    return tiny_model, explainer.trace(tiny_model, TEXT)


def test_overview_matches_brute_force(traced):
    _, tr = traced
    acts = tr.mlp_activations.numpy()                                  # (n, T, d_mlp)
    view = mlp.mlp_overview(tr, per_layer=5)
    for layer in range(tr.n_layers):
        strength = abs(acts[layer]).max(axis=0)
        best = sorted(range(acts.shape[2]), key=lambda j: -strength[j])[:5]
        assert view.neurons[layer].tolist() == best
        for r, n in enumerate(best):
            t = int(abs(acts[layer, :, n]).argmax())
            assert int(view.peak_token[layer, r]) == t
            assert float(view.peak[layer, r]) == pytest.approx(float(acts[layer, t, n]))
    assert mlp.mlp_overview(tr) is mlp.mlp_overview(tr)                # memoised per trace


def test_layer_and_token_views(traced):
    _, tr = traced
    acts = tr.mlp_activations
    la = mlp.layer_activations(tr, 1, n_neurons=7)
    assert len(la.neurons) == 7 and la.values.shape == (tr.n_tokens, 7)
    assert torch.allclose(la.values, acts[1][:, list(la.neurons)])
    tn = mlp.token_neurons(tr, 1, -1, k=4)
    row = acts[1, -1]
    assert tn.token == tr.n_tokens - 1
    assert list(tn.neurons) == torch.topk(row.abs(), 4).indices.tolist()
    assert tn.values == pytest.approx(row[list(tn.neurons)].tolist())
    with pytest.raises(ValueError):
        mlp.token_neurons(tr, tr.n_layers, 0)
    with pytest.raises(ValueError):
        mlp.token_neurons(tr, 0, tr.n_tokens)


def test_output_direction_is_what_down_projection_adds(tiny_model):
    """Feeding a one-hot activation through the real down projection gives the direction (+ bias)."""
    block = tiny_model.arch.blocks(tiny_model.hf_model)[1]
    down = tiny_model.arch.mlp_down(block)
    n = 5
    onehot = torch.zeros(1, tiny_model.d_mlp)
    onehot[0, n] = 1.0
    with torch.inference_mode():
        expected = (down(onehot) - down(torch.zeros_like(onehot)))[0]
    if tiny_model.arch.family == "gemma3":                             # then its post-norm's gain (1 + weight)
        expected = expected * (1 + block.post_feedforward_layernorm.weight.detach())
    assert torch.allclose(mlp.output_direction(tiny_model, 1, n), expected, atol=1e-6)
    with pytest.raises(ValueError):
        mlp.output_direction(tiny_model, 0, tiny_model.d_mlp)


def test_neuron_effect_ranks_scores(traced):
    model, tr = traced
    eff = mlp.neuron_effect(model, tr, 0, 3, k=6)
    gain = model.arch.final_norm(model.hf_model).weight.detach()
    if model.arch.family == "gemma3":                                  # Gemma's RMSNorm scales by 1 + weight
        gain = gain + 1
    scores = model.unembedding_matrix() @ (mlp.output_direction(model, 0, 3) * gain)
    assert list(eff.up_ids) == torch.topk(scores, 6).indices.tolist()
    assert list(eff.down_ids) == torch.topk(-scores, 6).indices.tolist()
    assert eff.up_scores[0] == pytest.approx(float(scores.max()), rel=1e-5)
    assert eff.down_scores[0] == pytest.approx(float(scores.min()), rel=1e-5)
    assert eff.activations == pytest.approx(tr.mlp_activations[0, :, 3].tolist())


def test_token_window():
    assert list(mlp.token_window(10, 3, 48)) == list(range(10))
    w = mlp.token_window(1000, 999, 48)
    assert (w.start, w.stop) == (952, 1000)
    w = mlp.token_window(1000, 500, 48)
    assert 500 in w and len(w) == 48
    assert list(mlp.token_window(1000, -1, 4)) == [996, 997, 998, 999]


def test_figures_structure_and_escaping(traced):
    model, tr = traced
    tokens = list(tr.tokens)
    tokens[0] = "<0xE7>"
    overview = replace(mlp.mlp_overview(tr), tokens=tuple(tokens))
    fig = figs.overview_figure(overview, VIEW)
    assert fig.data[0].type == "heatmap" and fig.data[0].zmid == 0
    assert figs.colour_cap([1, -2, 3, 1000], 0.5) == (3.0, True)
    assert figs.colour_cap([0.5, -1.0], 0.99) == (1.0, False)
    assert "%{customdata[0]}" in fig.data[0].hovertemplate and "%{z:.4f}" in fig.data[0].hovertemplate
    window = mlp.token_window(tr.n_tokens, -1, 5)
    la = replace(mlp.layer_activations(tr, 0, window=window), tokens=tuple(tokens))
    heat = figs.layer_heatmap(la, VIEW)
    assert len(heat.data[0].y) == 5 and len(heat.data[0].x) == len(la.neurons)
    assert figs.layer_heatmap(replace(la, window=range(0, 2)), VIEW).data[0].y[0] == "0: &lt;0xE7&gt;"
    assert [r["position"] for r in la.rows()] == list(window) and f"n{la.neurons[0]}" in la.rows()[0]
    tn = replace(mlp.token_neurons(tr, 0, 0), label=tokens[0])
    bar = figs.token_neurons_figure(tn, VIEW)
    assert "&lt;0xE7&gt;" in bar.layout.title.text and list(bar.data[0].y) == pytest.approx(tn.values)
    eff = replace(mlp.neuron_effect(model, tr, 0, 1, k=4, window=window), up_labels=("<b>",) * 4,
                  down_labels=("x",) * 4)
    ef = figs.neuron_effect_figure(eff, VIEW)
    assert len(ef.data) == 2 and len(set(ef.data[0].y)) == 4 and "<b>" not in "".join(ef.data[0].y)
    assert eff.rows()["pushes_up"][0] == ["<b>", eff.up_scores[0]]
    fires = figs.neuron_tokens_figure(eff.firing, VIEW)
    assert len(fires.data[0].x) == 5 and len(eff.firing.rows()) == tr.n_tokens
