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
from explainer.trace import RotaryInfo, Trace

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
    dtype = storage_dtype(model, len(ids))
    with model.lock, _hooked(model, len(ids), dtype, *ablation) as rec, torch.inference_mode():
        out = model.hf_model(input_ids=input_ids, use_cache=False)
        logits = out.logits[0]                                      # (T, V)
        del out
    with model.lock:
        pieces = token_bytes(model.tokenizer, ids)
    return _build_trace(model, text, ids, pieces, truncated, rec, logits, ablation)


def storage_dtype(model: LoadedModel, T: int) -> torch.dtype:
    """float32 while a T-token trace fits FULL_PRECISION_BUDGET, else float16 (display precision)."""
    n = model.n_layers
    fp32_bytes = 4 * (n * model.n_heads * T * (T + 1) // 2 + T * model.vocab_size
                      + (3 * n + 1) * T * model.d_model + n * T * model.d_mlp)
    return torch.float32 if fp32_bytes <= FULL_PRECISION_BUDGET else torch.float16


def _check_ablation(model: LoadedModel, heads: frozenset, mlps: frozenset) -> None:
    for layer, head in heads:
        if not (0 <= layer < model.n_layers and 0 <= head < model.n_heads):
            raise ValueError(f"There is no head {head} in layer {layer} (layers 0–{model.n_layers - 1}, "
                             f"heads 0–{model.n_heads - 1}).")
    for layer in mlps:
        if not 0 <= layer < model.n_layers:
            raise ValueError(f"There is no MLP layer {layer} (layers 0–{model.n_layers - 1}).")


class _Recorder:
    """Per-pass capture buffers, filled by the hooks of one thread.

    Every capture is copied (and, for long prompts, cast to float16) straight into one
    preallocated buffer per stage on the model's device, and attention is packed to its lower
    triangle inside the hook, so the full (H, T, T) weights are freed layer by layer as in a
    plain forward. ``got`` records which slots were filled.
    """

    def __init__(self, n_layers: int, n_heads: int, T: int, d_model: int, d_mlp: int,
                 dtype: torch.dtype, device: torch.device, owner: int) -> None:
        self.owner = owner
        self.T = T
        self.n_layers = n_layers
        new = lambda *shape: torch.empty(shape, dtype=dtype, device=device)  # noqa: E731
        self.embeddings = new(T, d_model)                     # (T, d)
        self.positions: torch.Tensor | None = None            # (T, d) when the model has them
        self.residual = new(n_layers + 1, T, d_model)         # (n+1, T, d): block inputs, then final
        self.attn_out = new(n_layers, T, d_model)             # (n, T, d)
        self.attn_packed = new(n_layers, n_heads, T * (T + 1) // 2)   # (n, H, T(T+1)/2)
        self.mlp_out = new(n_layers, T, d_model)              # (n, T, d)
        self.mlp_act = new(n_layers, T, d_mlp)                # (n, T, d_mlp)
        self.dtype, self.device = dtype, torch.device(device)
        self.flat_tril = causal_flat_index(T, device)         # (T(T+1)/2,)
        self.got: set[tuple[str, int]] = set()

    def mine(self) -> bool:
        return threading.get_ident() == self.owner

    def put(self, name: str, i: int, value: torch.Tensor) -> None:
        """Copy ``value`` into slot ``i`` of buffer ``name`` (one copy, cast on the way)."""
        buf = getattr(self, name)
        slot = buf if i < 0 else buf[i]
        if value.shape != slot.shape:                         # copy_ would broadcast silently
            raise RuntimeError(f"Captured {name} has shape {tuple(value.shape)}, expected {tuple(slot.shape)}.")
        slot.copy_(value)
        self.got.add((name, i))

    def put_attention(self, i: int, weights: torch.Tensor) -> None:
        """(H, T, T) -> lower triangle (H, T(T+1)/2), stored in slot ``i``."""
        H, T = weights.shape[0], weights.shape[-1]
        flat = weights.reshape(H, T * T)
        if flat.dtype == self.dtype:
            torch.index_select(flat, 1, self.flat_tril, out=self.attn_packed[i])
        else:
            self.attn_packed[i].copy_(flat.index_select(1, self.flat_tril))
        self.got.add(("attn_packed", i))

    def complete(self) -> bool:
        need = {("embeddings", -1), ("residual", self.n_layers)}
        for name in ("residual", "attn_out", "attn_packed", "mlp_out", "mlp_act"):
            need.update((name, i) for i in range(self.n_layers))
        return need <= self.got


_FLAT_TRIL: dict[tuple[int, str], torch.Tensor] = {}


def causal_flat_index(T: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Flat indices (row * T + col) of the lower triangle of a (T, T) matrix, row by row (cached)."""
    key = (T, str(device))
    idx = _FLAT_TRIL.get(key)
    if idx is None:
        rows, cols = torch.tril_indices(T, T, device=device)
        idx = rows * T + cols
        if len(_FLAT_TRIL) > 16:
            _FLAT_TRIL.clear()
        _FLAT_TRIL[key] = idx
    return idx


def _first_tensor(args: tuple, kwargs: dict, key: str = "hidden_states") -> torch.Tensor:
    return args[0] if args else kwargs[key]


@contextlib.contextmanager
def _hooked(model: LoadedModel, T: int, dtype: torch.dtype, heads: frozenset,
            mlps: frozenset) -> Iterator[_Recorder]:
    """Register capture (and ablation) hooks; always remove them, even if the forward raises."""
    arch, hf = model.arch, model.hf_model
    rec = _Recorder(model.n_layers, model.n_heads, T, model.d_model, model.d_mlp, dtype, model.device,
                    threading.get_ident())
    handles: list[Any] = []

    def keep(name):
        def hook(module, args, output):
            if rec.mine():
                rec.put(name, -1, (output[0] if isinstance(output, tuple) else output)[0])
        return hook

    def set_final(module, args, kwargs):
        if rec.mine():
            rec.put("residual", model.n_layers, _first_tensor(args, kwargs)[0])

    try:
        handles.append(arch.token_embedding(hf).register_forward_hook(keep("embeddings")))
        pos = arch.position_embedding(hf)
        if pos is not None:
            rec.positions = torch.empty(T, model.d_model, dtype=dtype, device=model.device)
            handles.append(pos.register_forward_hook(keep("positions")))
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
            rec.put("residual", i, _first_tensor(args, kwargs)[0])      # (T, d_model)

    def attn(module, args, output):
        if not rec.mine():
            return
        out, weights = output[0], output[1]
        if weights is None:
            raise RuntimeError("The attention module returned no weights; load the model with "
                               "attn_implementation='eager'.")
        rec.put("attn_out", i, out[0])                          # (T, d_model)
        rec.put_attention(i, weights[0])                        # (H, T, T) -> packed

    def mlp(module, args, output):
        if rec.mine():
            if i in mlps:
                output = torch.zeros_like(output)               # MLP switched off
            rec.put("mlp_out", i, output[0])
            return output

    def mlp_act(module, args):
        if rec.mine():
            rec.put("mlp_act", i, args[0][0])                   # (T, d_mlp)

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


def _owned_cpu(t: torch.Tensor, dtype: torch.dtype, private: bool = False) -> torch.Tensor:
    """``t`` as a CPU tensor of ``dtype`` that nothing else references, with at most one copy.

    ``private``: nothing else holds ``t`` (the logits of this pass), so when it already has
    the right dtype and device it is kept as it is instead of copied (50 MB at 256 tokens).
    """
    if private and t.device.type == "cpu" and t.dtype == dtype and t.is_contiguous():
        return t
    return torch.empty(t.shape, dtype=dtype).copy_(t)


def _build_trace(model: LoadedModel, text: str, ids: list[int], pieces: list[bytes], truncated: bool,
                 rec: _Recorder, logits: torch.Tensor, ablation: tuple[frozenset, frozenset]) -> Trace:
    if not rec.complete():
        raise RuntimeError("A stage of the forward pass was not captured; the model's structure "
                           "does not match its architecture description.")
    dtype = rec.dtype
    on_cpu = rec.device.type == "cpu"      # buffers are fresh and private: no copy needed on the CPU

    def keep(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else (t if on_cpu else t.to("cpu"))

    return Trace(
        model_name=model.name,
        text=text,
        token_ids=torch.tensor(ids, dtype=torch.long),
        tokens=tuple(legible(p) for p in pieces),
        token_bytes=tuple(pieces),
        truncated=truncated,
        arch=model.arch.family,
        n_layers=model.n_layers,
        n_heads=model.n_heads,
        d_model=model.d_model,
        d_mlp=model.d_mlp,
        vocab_size=model.vocab_size,
        precision=str(dtype).removeprefix("torch."),
        rotary=_rotary(model),
        ablated_heads=ablation[0],
        ablated_mlps=ablation[1],
        _embeddings=keep(rec.embeddings),                                       # (T, d)
        _positions=keep(rec.positions),                                         # (T, d) or None
        _residual=keep(rec.residual),                                           # (n+1, T, d)
        _attn_out=keep(rec.attn_out),                                           # (n, T, d)
        _mlp_out=keep(rec.mlp_out),                                             # (n, T, d)
        _mlp_act=keep(rec.mlp_act),                                             # (n, T, d_mlp)
        _attn_packed=keep(rec.attn_packed),                                     # (n, H, T(T+1)/2)
        _logits=_owned_cpu(logits, dtype, private=True),                        # (T, V)
        _last_logits=_owned_cpu(logits[-1], torch.float32),                     # (V,) always exact
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
