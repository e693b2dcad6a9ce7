"""The MLP (feed-forward) layer: which neurons fire on the prompt, and what each one writes.

Activations are the MLP's hidden values, the input of its down projection (SwiGLU in Llama:
``silu(gate) * up``; GeGLU in Gemma: ``gelu(gate) * up``; GPT-2: ``gelu(c_fc(x))``), read from the trace. A neuron's *output
direction* is the column of the down projection it multiplies; read through the
unembedding it says which next tokens the neuron pushes up or down when it fires.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explainer.arch import mlp_kind, norm_gain
from explainer.devices import host, to_device
from explainer.memo import per_trace
from explainer.models import LoadedModel
from explainer.tokens import token_labels
from explainer.trace import Trace

HEATMAP_NEURONS = 40


@dataclass(frozen=True)
class MlpOverview:
    """The most active neurons of every layer, ranked by their largest |activation| on the prompt.

    ``neurons[l, r]`` is the r-th strongest neuron of layer l; ``peak[l, r]`` its signed
    activation where |activation| is largest, at token ``peak_token[l, r]``.
    """

    neurons: torch.Tensor        # (n, R) long
    peak: torch.Tensor           # (n, R) float
    peak_token: torch.Tensor     # (n, R) long
    heat_neurons: torch.Tensor   # (n, HEATMAP_NEURONS) long: per layer, the neurons the heatmap shows
    tokens: tuple[str, ...] = ()  # the prompt's token labels

    def rows(self) -> dict[str, object]:
        return {"layer_neurons": self.neurons.tolist(), "peak_activation": self.peak.tolist(),
                "peak_token": self.peak_token.tolist(), "tokens": list(self.tokens)}


@dataclass(frozen=True)
class LayerActivations:
    """Token x neuron activations of one layer, restricted to its most active neurons."""

    layer: int
    neurons: tuple[int, ...]     # (N,) neuron ids, strongest first
    values: torch.Tensor         # (T, N) signed activations
    tokens: tuple[str, ...] = ()  # (T,) the prompt's token labels
    window: range = range(0)     # the positions a page shows

    def rows(self) -> list[dict[str, object]]:
        """One row per shown position: its token and every neuron's activation."""
        return [{"position": p, "token": self.tokens[p],
                 **{f"n{n}": float(self.values[p, j]) for j, n in enumerate(self.neurons)}} for p in self.window]


@dataclass(frozen=True)
class TokenNeurons:
    """The neurons with the largest |activation| at one token of one layer."""

    layer: int
    token: int
    neurons: tuple[int, ...]
    values: tuple[float, ...]    # signed activations, ordered by |value| descending
    label: str = ""              # the token's label

    def rows(self) -> list[dict[str, object]]:
        return [{"neuron": n, "activation": v} for n, v in zip(self.neurons, self.values)]


@dataclass(frozen=True)
class NeuronEffect:
    """What one neuron writes: its output direction read through the unembedding.

    ``up_ids``/``up_scores`` are the tokens whose logit rises most per unit of activation,
    ``down_ids``/``down_scores`` those that fall most (scores are logit change per unit).
    A negative activation reverses both lists.
    """

    layer: int
    neuron: int
    up_ids: tuple[int, ...]
    up_scores: tuple[float, ...]
    down_ids: tuple[int, ...]
    down_scores: tuple[float, ...]
    direction_norm: float
    activations: tuple[float, ...]   # (T,) this neuron's activation at every prompt token
    up_labels: tuple[str, ...] = ()
    down_labels: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()     # (T,) the prompt's token labels
    window: range = range(0)         # the positions a page shows

    def rows(self) -> dict[str, object]:
        return {"layer": self.layer, "neuron": self.neuron,
                "pushes_up": [[lab, s] for lab, s in zip(self.up_labels, self.up_scores)],
                "pushes_down": [[lab, s] for lab, s in zip(self.down_labels, self.down_scores)]}

    @property
    def firing(self) -> "NeuronFiring":
        """Where this neuron fires along the prompt (its own figure and download)."""
        return NeuronFiring(self.layer, self.neuron, self.tokens, self.activations, self.window)


@dataclass(frozen=True)
class NeuronFiring:
    """One neuron's activation at every prompt token; a page shows the positions in ``window``."""

    layer: int
    neuron: int
    tokens: tuple[str, ...]
    activations: tuple[float, ...]
    window: range

    def rows(self) -> list[dict[str, object]]:
        return [{"token": tok, "activation": a} for tok, a in zip(self.tokens, self.activations)]


@dataclass(frozen=True)
class MlpDesign:
    """How the model's MLP is built: its kind, its sizes, and whether a norm follows it."""

    kind: str                    # "GELU" (GPT-2) | "SwiGLU" (Llama, SmolLM2, Qwen) | "GeGLU" (Gemma)
    d_model: int
    d_mlp: int
    post_norm: bool              # what the MLP adds passes a norm first (Gemma's post-feedforward norm)

    def rows(self) -> dict[str, object]:
        return {"kind": self.kind, "d_model": self.d_model, "d_mlp": self.d_mlp, "post_norm": self.post_norm}


def mlp_design(model: LoadedModel) -> MlpDesign:
    """The MLP's kind (from the model's own activation) and sizes."""
    block = model.arch.blocks(model.hf_model)[0]
    return MlpDesign(mlp_kind(model.hf_model, model.arch), model.d_model, model.d_mlp,
                     model.arch.mlp_post_norm(block) is not None)


@per_trace
def mlp_overview(trace: Trace, per_layer: int = 10) -> MlpOverview:
    """The strongest neurons of every layer, from the peaks measured during the forward pass
    (remembered per trace: sliders that change the view never rescan)."""
    peak_all, where = trace.mlp_peaks()                         # (n, d_mlp) each, measured in the pass
    k = min(max(per_layer, HEATMAP_NEURONS), peak_all.shape[-1])
    _, order = torch.topk(peak_all.abs(), k, dim=-1)            # (n, k) strongest neurons per layer
    peak_token = host(where.gather(1, order))                   # (n, k)
    peak = host(peak_all.gather(1, order))                      # (n, k) signed value at the peak
    order, r = host(order), min(per_layer, k)
    return MlpOverview(order[:, :r], peak[:, :r], peak_token[:, :r], order[:, :HEATMAP_NEURONS], trace.tokens)


def layer_activations(trace: Trace, layer: int, n_neurons: int = HEATMAP_NEURONS,
                      window: range | None = None) -> LayerActivations:
    """The ``n_neurons`` most active neurons of ``layer`` at every token (``window``: the positions shown)."""
    trace.shape.check_layer(layer)
    view = mlp_overview(trace)
    n = min(n_neurons, view.heat_neurons.shape[1])
    neurons = view.heat_neurons[layer, :n]                      # (N,) on the host
    acts = trace.mlp_activation(layer).index_select(1, to_device(neurons, trace.device))   # (T, N)
    return LayerActivations(layer, tuple(neurons.tolist()), host(acts), trace.tokens,
                            range(trace.n_tokens) if window is None else window)


def token_neurons(trace: Trace, layer: int, token: int, k: int = 15) -> TokenNeurons:
    """The ``k`` neurons of ``layer`` with the largest |activation| at position ``token``."""
    trace.shape.check_layer(layer)
    if not -trace.n_tokens <= token < trace.n_tokens:
        raise ValueError(f"There is no token {token} (the text has {trace.n_tokens}).")
    token %= trace.n_tokens
    row = trace.mlp_activation(layer, rows=[token])[0]          # (d_mlp,) this position only
    _, idx = torch.topk(row.abs(), min(k, row.numel()))
    values = host(row[idx])                                     # (k,) signed, strongest first
    return TokenNeurons(layer, token, tuple(host(idx).tolist()), tuple(values.tolist()), trace.tokens[token])


def output_direction(model: LoadedModel, layer: int, neuron: int) -> torch.Tensor:
    """What neuron ``neuron`` of ``layer`` adds to the residual per unit activation: (d_model,).

    Llama's down_proj is an nn.Linear with weight (d_model, d_mlp): the column. GPT-2's c_proj
    is a Conv1D with weight (d_mlp, d_model), stored transposed: the row. Gemma 3 normalises what
    its MLP adds (post-feedforward norm): the direction is then scaled by that norm's learned
    gain; its data-dependent 1/rms factor (one positive number per token) is left out.
    """
    model.shape.check_layer(layer)
    if not 0 <= neuron < model.d_mlp:
        raise ValueError(f"There is no neuron {neuron} (layer {layer} has {model.d_mlp}: 0–{model.d_mlp - 1}).")
    down = model.arch.mlp_down(model.arch.blocks(model.hf_model)[layer])
    weight = down.weight.detach()
    column = (weight[:, neuron] if isinstance(down, nn.Linear) else weight[neuron, :]).float().cpu()
    post = model.arch.mlp_post_norm(model.arch.blocks(model.hf_model)[layer])
    return column.clone() if post is None else column * norm_gain(post, model.arch)


def neuron_effect(model: LoadedModel, trace: Trace, layer: int, neuron: int, k: int = 12,
                  window: range | None = None) -> NeuronEffect:
    """Top-k / bottom-k tokens of the neuron's output direction through the unembedding.

    Approximation (direct effect only): the final norm's learned weight is applied as a
    diagonal scale and its data-dependent part (dividing by the residual's size, and
    LayerNorm's mean removal and bias) is ignored, as are all later layers. The scores are
    logit changes per unit of activation, up to that positive overall scale.
    """
    direction = output_direction(model, layer, neuron)             # (d,)
    gain = norm_gain(model.arch.final_norm(model.hf_model), model.arch)     # (d,)
    unembedding = model.hf_model.get_output_embeddings().weight    # (V, d) where the model is
    with torch.inference_mode():
        scores = unembedding.float() @ to_device(direction * gain, unembedding.device)   # (V,)
        up_v, up_i = (host(x) for x in torch.topk(scores, k))
        down_v, down_i = (host(x) for x in torch.topk(-scores, k))
    acts = host(trace.mlp_activation(layer)[:, neuron])            # (T,)
    names = token_labels(model, _ints(up_i) + _ints(down_i))
    return NeuronEffect(layer, neuron, _ints(up_i), _floats(up_v), _ints(down_i), _floats(-down_v),
                        float(direction.norm()), _floats(acts), names[:len(up_i)], names[len(up_i):], trace.tokens,
                        range(trace.n_tokens) if window is None else window)


def _ints(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(x) for x in host(t).tolist())


def _floats(t: torch.Tensor) -> tuple[float, ...]:
    return tuple(float(x) for x in host(t).tolist())


def token_window(n_tokens: int, center: int, size: int = 48) -> range:
    """At most ``size`` consecutive positions around ``center`` (long prompts show a window)."""
    center %= max(n_tokens, 1)
    start = min(max(0, center - size // 2), max(0, n_tokens - size))
    return range(start, min(n_tokens, start + size))
