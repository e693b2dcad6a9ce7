"""Why this answer? Direct logit attribution: what each head, MLP and the embedding pushed.

The residual stream that reaches the final norm at the last position is a sum::

    x = embedding (+ position) + Σ_layers [ Σ_heads head_out + attn_bias + mlp_out ]

The final norm is not linear, but with its scale frozen at the value the real forward used
(``1/rms(x)``, or ``1/std(x)`` plus centring for LayerNorm) it is, so the target's logit
``W_U[target] · norm(x)`` splits exactly into one number per piece. A head's piece is its mix
``z_h = A_h · v`` through its slice of the output projection and, for Gemma 3, through the
post-attention norm with that norm's scale frozen too. What the MLP added is read from the
residual stream itself (what block ``l`` added minus what its attention added), so the pieces
add up to the real logit to float rounding. Biases not owned by one component (output-projection
biases, the final LayerNorm's bias, an unembedding bias) are one more number.

This is a *first-order* picture: it shows where the logit was written, not what would happen
if a component were removed (that changes the later layers and the norm's scale too); measure
that by tracing again with ``ablate_heads`` / ``ablate_mlps``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import numpy as np
import torch

from explainer import blocks
from explainer.analysis.attribution_norms import FrozenNorm, freeze_norm
from explainer.analysis.attribution_targets import TargetError, resolve_target
from explainer.devices import host, to_device
from explainer.memo import per_trace
from explainer.models import LoadedModel
from explainer.shape import check_heads, check_layers
from explainer.trace import Trace

__all__ = ["Component", "LogitAttribution", "TargetError", "direct_logit_attribution", "predicted_change",
           "resolve_target", "top_components"]

Order = Literal["abs", "up", "down", "idle"]


def _frozen_array(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.float64)
    values.setflags(write=False)              # results are shared by every session: read-only
    return values


@dataclass(frozen=True)
class LogitAttribution:
    """How much each component pushed the target's logit (or target − contrast) at the last position.

    ``heads.sum() + mlps.sum() + embedding + biases == total`` (to float rounding), and ``total``
    is the model's own logit of ``target`` (minus that of ``contrast`` when one is given).
    """

    heads: np.ndarray            # (n_layers, n_heads)
    mlps: np.ndarray             # (n_layers,)
    embedding: float             # the token vector (GPT-2: plus its position vector)
    biases: float                # attention output biases, final-norm bias, unembedding bias
    total: float
    target: int
    contrast: int | None = None

    @property
    def parts_sum(self) -> float:
        return float(self.heads.sum() + self.mlps.sum() + self.embedding + self.biases)

    def rows(self) -> list[dict]:
        """One plain dict per component (for CSV/JSON): component, layer, head, value."""
        out: list[dict] = [{"component": "embedding", "layer": None, "head": None, "value": self.embedding}]
        for layer in range(self.heads.shape[0]):
            out += [{"component": "head", "layer": layer, "head": h, "value": float(v)}
                    for h, v in enumerate(self.heads[layer])]
            out.append({"component": "mlp", "layer": layer, "head": None, "value": float(self.mlps[layer])})
        out.append({"component": "biases", "layer": None, "head": None, "value": self.biases})
        return out


@per_trace
def direct_logit_attribution(model: LoadedModel, trace: Trace, target: int | str | None = None,
                             contrast: int | str | None = None) -> LogitAttribution:
    """Split the target's logit after the last token into one number per head, MLP, embedding, biases.

    ``target``: a token id or text (:func:`resolve_target`); default the top prediction.
    ``contrast``: a second token; then the numbers split ``logit(target) − logit(contrast)``.
    Heads and MLPs switched off in ``trace`` contribute exactly 0. Remembered per trace.
    """
    if (model.n_layers, model.n_heads, model.d_model, model.vocab_size) != \
            (trace.n_layers, trace.n_heads, trace.d_model, trace.vocab_size):
        raise ValueError(f"This trace was made by '{trace.model_name}', not by '{model.name}'; pass its own model.")
    logits = host(trace.next_token_logits)                                 # (V,)
    target = int(logits.argmax()) if target is None else resolve_target(model, target)
    contrast = None if contrast is None else resolve_target(model, contrast)
    if contrast == target:
        raise TargetError("The target and the token to compare it with are the same; pick two different tokens.",
                          reason="same")
    _check_additive(model)
    direction, lm_bias = _unembedding_direction(model, target, contrast)    # (d,), float
    last = host(trace.stream_at([-1])[:, 0]).double()                      # (n+1, d): every row at the last token
    final = freeze_norm(model, model.arch.final_norm(model.hf_model), last[-1].float())
    read = lambda v: final.linear(v) @ direction                           # noqa: E731  (..., d) -> (...)
    heads = np.zeros((trace.n_layers, trace.n_heads))
    mlps = np.zeros(trace.n_layers)
    biases = float(final.bias @ direction) + lm_bias
    for layer, (per_head, attn_bias) in enumerate(every_head_output(model, trace)):   # (H, d), (d,)
        heads[layer] = read(per_head).numpy()
        biases += float(read(attn_bias))
        if layer not in trace.ablated_mlps:
            added = last[layer + 1] - last[layer]                          # (d,) what block ``layer`` wrote
            mlps[layer] = float(read(added - per_head.sum(0) - attn_bias))
    total = float(logits[target] - (0.0 if contrast is None else logits[contrast]))
    return LogitAttribution(_frozen_array(heads), _frozen_array(mlps), float(read(last[0])),
                            biases, total, target, contrast)


def head_outputs(model: LoadedModel, trace: Trace, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What each head of ``layer`` adds to the residual at the last position, and the shared rest.

    Returns ``(per_head (H, d), rest (d,))`` in float64 on the host with ``per_head.sum(0) + rest ==
    trace.attn_out_at(layer)[-1]``: the rest is the output projection's bias (through Gemma's
    post-norm). Switched-off heads are exactly 0, as in the forward that made the trace.
    """
    per_head, rest = _head_outputs_on_device(model, trace, layer)
    return _through_post_norm(model, layer, host(per_head).double(), host(rest).double())


def every_head_output(model: LoadedModel, trace: Trace) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`head_outputs` of every layer, computed on the trace's device and brought to the host at once."""
    found = [_head_outputs_on_device(model, trace, layer) for layer in range(trace.n_layers)]
    per_head = host(torch.stack([p for p, _ in found])).double()          # (n, H, d)
    rest = host(torch.stack([r for _, r in found])).double()              # (n, d)
    return [_through_post_norm(model, layer, per_head[layer], rest[layer]) for layer in range(trace.n_layers)]


def _head_outputs_on_device(model: LoadedModel, trace: Trace, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each head's output-projection image at the last position (H, d), and the bias (d,): float32, on the device."""
    parts = trace.qkv(layer)
    H, T, hd = parts.q.shape
    weights = blocks.weights_for(parts, torch.tensor([T - 1]))[:, 0]       # (H, T)
    off = [h for l, h in trace.ablated_heads if l == layer]
    with torch.inference_mode():
        z = torch.einsum("ht,htd->hd", weights, parts.v.index_select(0, parts.kv_index()))   # (H, hd)
        if off:
            z = z.index_fill(0, to_device(torch.tensor(off), z.device), 0.0)   # switched off in this trace
        proj = model.arch.attn_out_proj(model.arch.blocks(model.hf_model)[layer])
        rest = proj(torch.zeros(1, H * hd, device=z.device))[0]             # (d,) the bias (or 0)
        per_head = proj(torch.block_diag(*z[:, None, :])) - rest            # (H, d): head h alone, no bias
    return per_head, rest


def _through_post_norm(model: LoadedModel, layer: int, per_head: torch.Tensor,
                       rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gemma 3 normalises what attention adds: the heads' images through that norm, frozen (host, float64)."""
    post = model.arch.attn_post_norm(model.arch.blocks(model.hf_model)[layer])
    if post is None:
        return per_head, rest
    frozen: FrozenNorm = freeze_norm(model, post, (per_head.sum(0) + rest).float())
    return frozen.linear(per_head), frozen.linear(rest) + frozen.bias


def _unembedding_direction(model: LoadedModel, target: int, contrast: int | None) -> tuple[torch.Tensor, float]:
    """The unembedding row(s) the logit reads, (d,) float64, and the unembedding bias term."""
    head = model.hf_model.get_output_embeddings()
    with torch.inference_mode():
        rows = head.weight[[target] if contrast is None else [target, contrast]].double().cpu()   # (1|2, d)
        bias = None if head.bias is None else head.bias[[target] if contrast is None else [target, contrast]]
    direction = rows[0] if contrast is None else rows[0] - rows[1]
    if bias is None:
        return direction, 0.0
    bias = bias.double().cpu()
    return direction, float(bias[0] if contrast is None else bias[0] - bias[1])


def _check_additive(model: LoadedModel) -> None:
    if getattr(model.hf_model.config, "final_logit_softcapping", None):
        raise ValueError("This model squashes its logits (a final soft cap), so they do not split into "
                         "one number per component.")


# ---------------------------------------------------------------- reading the result


@dataclass(frozen=True)
class Component:
    """One head (``head`` set) or one MLP layer (``head`` None) and its push on the logit."""

    kind: Literal["head", "mlp"]
    layer: int
    head: int | None
    value: float


def components(attribution: LogitAttribution, kinds: Iterable[str] = ("head", "mlp")) -> list[Component]:
    """Every head and/or MLP layer as a :class:`Component`, layer by layer."""
    kinds = set(kinds)
    out: list[Component] = []
    for layer in range(attribution.heads.shape[0]):
        if "head" in kinds:
            out += [Component("head", layer, h, float(v)) for h, v in enumerate(attribution.heads[layer])]
        if "mlp" in kinds:
            out.append(Component("mlp", layer, None, float(attribution.mlps[layer])))
    return out


def top_components(attribution: LogitAttribution, k: int = 10, order: Order = "abs",
                   kinds: Iterable[str] = ("head", "mlp")) -> list[Component]:
    """The ``k`` components first in ``order``: "abs" largest |value|, "up" most positive,
    "down" most negative, "idle" smallest |value| (the heads that did least)."""
    keys = {"abs": lambda c: -abs(c.value), "up": lambda c: -c.value, "down": lambda c: c.value,
            "idle": lambda c: abs(c.value)}
    if order not in keys:
        raise ValueError(f"order must be one of {', '.join(keys)}, not {order!r}.")
    return sorted(components(attribution, kinds), key=keys[order])[:max(0, int(k))]


def predicted_change(attribution: LogitAttribution, heads_off: Iterable[tuple[int, int]] = (),
                     mlps_off: Iterable[int] = ()) -> float:
    """The change of the attributed logit that the attribution predicts when these are switched off.

    First order only: it removes each component's own direct push and assumes nothing else
    moves (later layers that read it, the final norm's scale). The real effect is measured
    by tracing with ``ablate_heads`` / ``ablate_mlps`` and reading the new logit.
    """
    n_layers, n_heads = attribution.heads.shape
    change = 0.0
    for layer, head in check_heads(heads_off, n_layers, n_heads):
        change -= float(attribution.heads[layer, head])
    for layer in check_layers(mlps_off, n_layers, "MLP layer"):
        change -= float(attribution.mlps[layer])
    return change
