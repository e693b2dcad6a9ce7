"""One forward pass with hooks -> an immutable :class:`Trace` of every stage.

Hooks are registered on the real HF modules inside :func:`_hooked` (removed in ``finally``),
under the model's lock, and only record calls from the tracing thread, so the shared
model is never modified and concurrent sessions never mix their captures.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from explainer.models import LoadedModel
from explainer.tokens import legible, token_bytes
from explainer.trace import RotaryInfo, Trace, pack_causal

DEFAULT_MAX_TOKENS = 1024
# Above this many bytes of float32 captures, store big tensors in float16 (display precision).
FULL_PRECISION_BUDGET = 256 * 2**20


def tokenize(model: LoadedModel, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[list[int], bool]:
    """The ids the model will see for ``text`` (at most ``max_tokens``) and whether it was cut."""
    if not isinstance(text, str):
        raise TypeError(f"The prompt must be text (str), not {type(text).__name__}.")
    if not text.strip():
        raise ValueError("The prompt is empty. Type a sentence for the model to read.")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive whole number, not {max_tokens!r}.")
    max_tokens = min(max_tokens, model.context_length)
    char_cap = max(max_tokens * 64, 4096)     # no need to tokenize a whole book to keep its start
    clipped = text[:char_cap]
    with model.lock:                          # fast tokenizers are not safe to share across threads
        ids = model.tokenizer(clipped, add_special_tokens=True)["input_ids"]
    if not ids:
        raise ValueError("The prompt produced no tokens. Type some words for the model to read.")
    truncated = len(ids) > max_tokens or len(clipped) < len(text)
    return ids[:max_tokens], truncated


def trace(
    model: LoadedModel,
    text: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    ablate_heads: Iterable[tuple[int, int]] = (),
    ablate_mlps: Iterable[int] = (),
) -> Trace:
    """Run ``text`` through ``model`` once and capture every stage.

    ``ablate_heads`` (layer, head) pairs and ``ablate_mlps`` layers are switched off for
    this pass only (their output is zeroed); the shared model is left as it was.
    """
    ids, truncated = tokenize(model, text, max_tokens)
    ablation = (frozenset((int(l), int(h)) for l, h in ablate_heads), frozenset(int(l) for l in ablate_mlps))
    _check_ablation(model, *ablation)
    input_ids = torch.tensor([ids], device=model.device)          # (1, T)
    with model.lock, _hooked(model, *ablation) as rec, torch.inference_mode():
        out = model.hf_model(input_ids=input_ids, use_cache=False)
        logits = out.logits[0]                                      # (T, V)
    with model.lock:
        pieces = token_bytes(model.tokenizer, ids)
    return _build_trace(model, text, ids, pieces, truncated, rec, logits, ablation)


def _check_ablation(model: LoadedModel, heads: frozenset, mlps: frozenset) -> None:
    for layer, head in heads:
        if not (0 <= layer < model.n_layers and 0 <= head < model.n_heads):
            raise ValueError(f"There is no head {head} in layer {layer} (layers 0–{model.n_layers - 1}, "
                             f"heads 0–{model.n_heads - 1}).")
    for layer in mlps:
        if not 0 <= layer < model.n_layers:
            raise ValueError(f"There is no MLP layer {layer} (layers 0–{model.n_layers - 1}).")


class _Recorder:
    """Per-pass capture buffers, filled by the hooks of one thread."""

    def __init__(self, n_layers: int, owner: int) -> None:
        self.owner = owner
        self.embeddings: torch.Tensor | None = None
        self.positions: torch.Tensor | None = None
        self.block_in: list[torch.Tensor | None] = [None] * n_layers
        self.attn_out: list[torch.Tensor | None] = [None] * n_layers
        self.attn_weights: list[torch.Tensor | None] = [None] * n_layers
        self.mlp_out: list[torch.Tensor | None] = [None] * n_layers
        self.mlp_act: list[torch.Tensor | None] = [None] * n_layers
        self.final_in: torch.Tensor | None = None

    def mine(self) -> bool:
        return threading.get_ident() == self.owner


def _first_tensor(args: tuple, kwargs: dict, key: str = "hidden_states") -> torch.Tensor:
    return args[0] if args else kwargs[key]


@contextlib.contextmanager
def _hooked(model: LoadedModel, heads: frozenset, mlps: frozenset) -> Iterator[_Recorder]:
    """Register capture (and ablation) hooks; always remove them, even if the forward raises."""
    arch, hf = model.arch, model.hf_model
    rec = _Recorder(model.n_layers, threading.get_ident())
    handles: list[Any] = []

    def keep(setter):
        def hook(module, args, output):
            if rec.mine():
                setter(output[0] if isinstance(output, tuple) else output)
        return hook

    def set_embeddings(t):
        rec.embeddings = t[0].detach()
    def set_positions(t):
        rec.positions = t[0].detach()
    def set_final(module, args, kwargs):
        if rec.mine():
            rec.final_in = _first_tensor(args, kwargs)[0].detach()

    try:
        handles.append(arch.token_embedding(hf).register_forward_hook(keep(set_embeddings)))
        pos = arch.position_embedding(hf)
        if pos is not None:
            handles.append(pos.register_forward_hook(keep(set_positions)))
        for i, block in enumerate(arch.blocks(hf)):
            handles.extend(_block_hooks(arch, block, i, rec, heads, mlps, model.head_dim))
        handles.append(arch.final_norm(hf).register_forward_pre_hook(set_final, with_kwargs=True))
        yield rec
    finally:
        for handle in handles:
            handle.remove()


def _block_hooks(arch, block, i: int, rec: _Recorder, heads: frozenset, mlps: frozenset,
                 head_dim: int) -> list[Any]:
    """Hooks on block ``i``: its input (the residual), attention, MLP and any ablation."""
    def block_in(module, args, kwargs):
        if rec.mine():
            rec.block_in[i] = _first_tensor(args, kwargs)[0].detach()

    def attn(module, args, output):
        if not rec.mine():
            return
        out, weights = output[0], output[1]
        if weights is None:
            raise RuntimeError("The attention module returned no weights; load the model with "
                               "attn_implementation='eager'.")
        rec.attn_out[i] = out[0].detach()                       # (T, d_model)
        rec.attn_weights[i] = weights[0].detach()               # (H, T, T)

    def mlp(module, args, output):
        if rec.mine():
            if i in mlps:
                output = torch.zeros_like(output)               # MLP switched off
            rec.mlp_out[i] = output[0].detach()
            return output

    def mlp_act(module, args):
        if rec.mine():
            rec.mlp_act[i] = args[0][0].detach()                # (T, d_mlp)

    handles = [
        block.register_forward_pre_hook(block_in, with_kwargs=True),
        arch.attention(block).register_forward_hook(attn),
        arch.mlp(block).register_forward_hook(mlp),
        arch.mlp_down(block).register_forward_pre_hook(mlp_act),
    ]
    off = sorted(h for layer, h in heads if layer == i)
    if off:
        def zero_heads(module, args):
            if rec.mine():
                x = args[0].clone()                             # (B, T, H*hd), heads side by side
                for h in off:
                    x[..., h * head_dim:(h + 1) * head_dim] = 0
                return (x, *args[1:])
        handles.append(arch.attn_out_proj(block).register_forward_pre_hook(zero_heads))
    return handles


def _build_trace(model: LoadedModel, text: str, ids: list[int], pieces: list[bytes], truncated: bool,
                 rec: _Recorder, logits: torch.Tensor, ablation: tuple[frozenset, frozenset]) -> Trace:
    n, T = model.n_layers, len(ids)
    if any(x is None for x in rec.block_in) or rec.final_in is None or rec.embeddings is None:
        raise RuntimeError("A stage of the forward pass was not captured; the model's structure "
                           "does not match its architecture description.")
    fp32_bytes = 4 * (n * model.n_heads * T * (T + 1) // 2 + T * model.vocab_size
                      + (3 * n + 1) * T * model.d_model + n * T * model.d_mlp)
    dtype = torch.float32 if fp32_bytes <= FULL_PRECISION_BUDGET else torch.float16

    def stack(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([p.to("cpu", dtype) for p in parts]).clone()

    return Trace(
        model_name=model.name,
        text=text,
        token_ids=torch.tensor(ids, dtype=torch.long),
        tokens=tuple(legible(p) for p in pieces),
        token_bytes=tuple(pieces),
        truncated=truncated,
        arch=model.arch.family,
        n_layers=n,
        n_heads=model.n_heads,
        d_model=model.d_model,
        d_mlp=model.d_mlp,
        vocab_size=model.vocab_size,
        precision=str(dtype).removeprefix("torch."),
        rotary=_rotary(model),
        ablated_heads=ablation[0],
        ablated_mlps=ablation[1],
        _embeddings=rec.embeddings.to("cpu", dtype).clone(),
        _positions=None if rec.positions is None else rec.positions.to("cpu", dtype).clone(),
        _residual=stack(rec.block_in + [rec.final_in]),                         # (n+1, T, d)
        _attn_out=stack(rec.attn_out),                                          # (n, T, d)
        _mlp_out=stack(rec.mlp_out),                                            # (n, T, d)
        _mlp_act=stack(rec.mlp_act),                                            # (n, T, d_mlp)
        _attn_packed=torch.stack([pack_causal(w).to("cpu", dtype) for w in rec.attn_weights]),
        _logits=logits.to("cpu", dtype).clone(),                                # (T, V)
        _last_logits=logits[-1].to("cpu", torch.float32).clone(),               # (V,) always exact
    )


def _rotary(model: LoadedModel) -> RotaryInfo | None:
    if not model.arch.rotary:
        return None
    cfg = model.hf_model.config
    params = getattr(cfg, "rope_parameters", None) or {}
    theta = float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
    rotary_emb = getattr(getattr(model.hf_model, "model", None), "rotary_emb", None)
    inv_freq = getattr(rotary_emb, "inv_freq", None)
    if inv_freq is None:
        inv_freq = 1.0 / theta ** (torch.arange(0, model.head_dim, 2).float() / model.head_dim)
    return RotaryInfo(theta=theta, head_dim=model.head_dim,
                      inv_freq=inv_freq.detach().float().cpu().clone())
