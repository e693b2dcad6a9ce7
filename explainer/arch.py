"""Where each stage lives inside a Hugging Face model, per architecture family.

An :class:`Architecture` maps the journey's names (embeddings, blocks, attention, MLP,
final norm, unembedding) onto the model's own module tree, nnsight-style: we only read
and hook the real modules, never re-implement or edit the forward pass.
Supported: GPT-2 (learned positions, LayerNorm, GELU, Conv1D) and the Llama family
(RoPE, grouped-query attention, RMSNorm, SwiGLU: llama, mistral, qwen2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


class UnsupportedArchitecture(ValueError):
    """The model is a causal LM, but the tracer does not know where its stages live."""


@dataclass(frozen=True)
class Architecture:
    """Accessors from an HF causal LM to the modules each stage hooks into."""

    family: str                                   # "gpt2" | "llama"
    blocks: Callable[[nn.Module], nn.ModuleList]  # the N transformer blocks
    token_embedding: Callable[[nn.Module], nn.Module]
    position_embedding: Callable[[nn.Module], nn.Module | None]
    attention: Callable[[nn.Module], nn.Module]   # block -> attention module (returns (out, weights))
    mlp: Callable[[nn.Module], nn.Module]         # block -> MLP module
    mlp_down: Callable[[nn.Module], nn.Module]    # block -> MLP output projection (its input = activations)
    attn_in_norm: Callable[[nn.Module], nn.Module]  # block -> norm before attention
    attn_out_proj: Callable[[nn.Module], nn.Module]  # block -> attention output projection
    final_norm: Callable[[nn.Module], nn.Module]
    rotary: bool


GPT2 = Architecture(
    family="gpt2",
    blocks=lambda m: m.transformer.h,
    token_embedding=lambda m: m.transformer.wte,
    position_embedding=lambda m: m.transformer.wpe,
    attention=lambda b: b.attn,
    mlp=lambda b: b.mlp,
    mlp_down=lambda b: b.mlp.c_proj,
    attn_in_norm=lambda b: b.ln_1,
    attn_out_proj=lambda b: b.attn.c_proj,
    final_norm=lambda m: m.transformer.ln_f,
    rotary=False,
)

LLAMA = Architecture(
    family="llama",
    blocks=lambda m: m.model.layers,
    token_embedding=lambda m: m.model.embed_tokens,
    position_embedding=lambda m: None,
    attention=lambda b: b.self_attn,
    mlp=lambda b: b.mlp,
    mlp_down=lambda b: b.mlp.down_proj,
    attn_in_norm=lambda b: b.input_layernorm,
    attn_out_proj=lambda b: b.self_attn.o_proj,
    final_norm=lambda m: m.model.norm,
    rotary=True,
)

# model_type -> architecture. Llama-family models share Llama's module tree.
SUPPORTED: dict[str, Architecture] = {
    "gpt2": GPT2,
    "llama": LLAMA,
    "mistral": LLAMA,
    "qwen2": LLAMA,
}


def architecture_for(model_type: str) -> Architecture:
    """The architecture for an HF ``config.model_type``, or a clear refusal."""
    try:
        return SUPPORTED[model_type]
    except KeyError:
        known = ", ".join(sorted(SUPPORTED))
        raise UnsupportedArchitecture(
            f"Model type '{model_type}' is not supported by the tracer yet: it does not know "
            f"where this architecture keeps its blocks, attention, MLP and final norm. "
            f"Supported types: {known}. Choose a model of one of these families."
        ) from None


def check_structure(arch: Architecture, hf_model: nn.Module) -> None:
    """Fail clearly if a model claims a family but lacks one of its modules."""
    try:
        blocks = arch.blocks(hf_model)
        first = blocks[0]
        for name in ("attention", "mlp", "mlp_down", "attn_in_norm", "attn_out_proj"):
            getattr(arch, name)(first)
        arch.final_norm(hf_model)
        arch.token_embedding(hf_model)
    except (AttributeError, IndexError, TypeError) as err:
        raise UnsupportedArchitecture(
            f"This '{arch.family}'-type model is missing a module the tracer needs ({err}). "
            "It may be a variant the tracer does not support yet."
        ) from err


def unembed(hf_model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits from final-normed hidden states: [..., d_model] -> [..., vocab]."""
    return hf_model.get_output_embeddings()(x)
