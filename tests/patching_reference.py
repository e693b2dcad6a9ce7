"""Activation patching written the plain way, to hold the library against: one full forward of the
Hugging Face model per cell, a forward hook that overwrites one activation with the clean run's,
the logit difference read from the model's own logits. Module paths are spelled out here per
family; nothing comes from the ``explainer`` package."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

# family -> (blocks, what attention adds, what the MLP adds, attention output projection)
_LLAMA = (lambda m: m.model.layers, lambda b: b.self_attn, lambda b: b.mlp, lambda b: b.self_attn.o_proj)
MODULES: dict[str, tuple[Callable, Callable, Callable, Callable]] = {
    "gpt2": (lambda m: m.transformer.h, lambda b: b.attn, lambda b: b.mlp, lambda b: b.attn.c_proj),
    "llama": _LLAMA,
    "qwen3": _LLAMA,
    "gemma3_text": (lambda m: m.model.layers, lambda b: b.post_attention_layernorm,    # Gemma: after its post-norms
                    lambda b: b.post_feedforward_layernorm, lambda b: b.self_attn.o_proj),
}


def _modules(hf, site: str, layer: int) -> torch.nn.Module:
    blocks, attn, mlp, proj = MODULES[hf.config.model_type]
    block = blocks(hf)[layer]
    return {"resid_pre": block, "attn_out": attn(block), "mlp_out": mlp(block), "heads": proj(block)}[site]


def _tensor(x):
    return x[0] if isinstance(x, tuple) else x


def clean_activations(hf, ids: list[int]) -> dict[str, list[torch.Tensor]]:
    """Every site's activation in the run of ``ids``: site -> one (T, width) tensor per layer."""
    n = hf.config.num_hidden_layers
    got: dict[str, list] = {s: [None] * n for s in ("resid_pre", "attn_out", "mlp_out", "heads")}
    handles = []
    for layer in range(n):
        for site in got:
            module = _modules(hf, site, layer)
            if site in ("resid_pre", "heads"):
                hook = lambda m, a, k, s=site, l=layer: got[s].__setitem__(l, (a[0] if a else k["hidden_states"])[0].clone())
                handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
            else:
                hook = lambda m, a, o, s=site, l=layer: got[s].__setitem__(l, _tensor(o)[0].clone())
                handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            hf(input_ids=torch.tensor([ids]), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return got


def patched_logits(hf, ids: list[int], site: str, layer: int, index: int, clean: dict) -> torch.Tensor:
    """The last position's logits (V,) of ``ids`` with one clean activation copied in."""
    module = _modules(hf, site, layer)
    value = clean[site][layer]
    if site == "resid_pre":
        def hook(m, args, kwargs):
            x = (args[0] if args else kwargs["hidden_states"]).clone()
            x[0, index] = value[index]
            return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})
        handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    elif site == "heads":
        hd = value.shape[-1] // hf.config.num_attention_heads
        def hook(m, args):
            x = args[0].clone()
            x[0, :, index * hd:(index + 1) * hd] = value[:, index * hd:(index + 1) * hd]
            return (x, *args[1:])
        handle = module.register_forward_pre_hook(hook)
    else:
        def hook(m, args, output):
            x = _tensor(output).clone()
            x[0, index] = value[index]
            return (x, *output[1:]) if isinstance(output, tuple) else x
        handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            return hf(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1).logits[0, -1].double()
    finally:
        handle.remove()


def logit_diffs(hf, clean_ids: list[int], corrupted_ids: list[int], site: str, answer: int, contrast: int,
                cells: list[tuple[int, int]] | None = None) -> np.ndarray:
    """logit(answer) − logit(contrast) of every patched run (n_layers × positions or heads; NaN where
    ``cells`` leaves a cell out)."""
    n, H = hf.config.num_hidden_layers, hf.config.num_attention_heads
    width = H if site == "heads" else len(clean_ids)
    clean = clean_activations(hf, clean_ids)
    out = np.full((n, width), np.nan)
    for layer, index in cells or [(l, i) for l in range(n) for i in range(width)]:
        logits = patched_logits(hf, corrupted_ids, site, layer, index, clean)
        out[layer, index] = float(logits[answer] - logits[contrast])
    return out


def run_diff(hf, ids: list[int], answer: int, contrast: int) -> float:
    with torch.no_grad():
        logits = hf(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1).logits[0, -1].double()
    return float(logits[answer] - logits[contrast])
