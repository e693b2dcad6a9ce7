"""Where each stage lives inside a Hugging Face model, per architecture family.

An :class:`Architecture` maps the journey's names (embeddings, blocks, attention, MLP, the
norms around them, final norm, unembedding) onto the model's own module tree, nnsight-style:
we only read and call the real modules, never edit them. It also declares each family's quirks
(a fused q/k/v projection, a gated MLP, the rotary module, q/k norms, a norm's offset,
post-norms), which the blocks, attribution and the model card read: adding a family is one
entry in :data:`SUPPORTED`.

Supported families:
- ``gpt2``: learned positions, LayerNorm, GELU MLP, fused Conv1D q/k/v.
- ``llama`` (llama, mistral, qwen2): RoPE, grouped-query attention, RMSNorm, SwiGLU.
- ``qwen3``: the Llama tree plus RMSNorm on every query and key head (q/k norms).
- ``gemma3`` (``gemma3_text``): q/k norms, four norms per block (a post-norm after attention
  and after the MLP, so what a sublayer adds to the residual is the post-norm's output),
  GeGLU, embeddings scaled by √d inside the embedding module, and layers that read only a
  sliding window (local) between layers that read everything (global), each with its own
  rotary base.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

ModuleOf = Callable[[nn.Module], nn.Module]


class UnsupportedArchitecture(ValueError):
    """The model is a causal LM, but the tracer does not know where its stages live."""


@dataclass(frozen=True)
class Architecture:
    """Accessors from an HF causal LM (or one of its blocks, attention or MLP module) to the modules
    each stage uses, and the family's quirks: everything that differs between families is declared
    here, so :mod:`explainer.blocks`, attribution and the model card read it instead of branching."""

    family: str                                     # "gpt2" | "llama" | "qwen3" | "gemma3"
    blocks: Callable[[nn.Module], nn.ModuleList]    # the N transformer blocks
    token_embedding: ModuleOf
    position_embedding: Callable[[nn.Module], nn.Module | None]
    attention: ModuleOf                             # block -> attention module
    mlp: ModuleOf                                   # block -> MLP module
    mlp_down: ModuleOf                              # block -> MLP output projection (its input = activations)
    attn_in_norm: ModuleOf                          # block -> norm before attention
    attn_out_proj: ModuleOf                         # block -> attention output projection
    mlp_in_norm: ModuleOf                           # block -> norm before the MLP
    final_norm: ModuleOf
    mlp_up: ModuleOf                                # MLP -> projection into the hidden width (GPT-2: c_fc)
    mlp_act: ModuleOf                               # MLP -> its activation function (a module)
    mlp_gate: Callable[[nn.Module], nn.Module] | None = None   # MLP -> gate projection (SwiGLU, GeGLU); None: plain
    fused_qkv: Callable[[nn.Module], nn.Module] | None = None  # attention -> one projection making q, k, v (GPT-2)
    q_proj: ModuleOf = lambda a: a.q_proj           # attention -> query projection (when not fused)
    k_proj: ModuleOf = lambda a: a.k_proj
    v_proj: ModuleOf = lambda a: a.v_proj
    q_norm: Callable[[nn.Module], nn.Module] | None = None     # attention -> RMSNorm on each query head
    k_norm: Callable[[nn.Module], nn.Module] | None = None     # attention -> RMSNorm on each key head
    rotary_emb: Callable[[nn.Module], nn.Module] | None = None  # model -> its rotary module (None: learned positions)
    norm_offset: float = 0.0                        # a norm scales by (offset + weight): Gemma stores w − 1
    attn_post_norm: Callable[[nn.Module], nn.Module | None] = lambda b: None   # Gemma: after attention
    mlp_post_norm: Callable[[nn.Module], nn.Module | None] = lambda b: None    # Gemma: after the MLP

    @property
    def rotary(self) -> bool:
        """Rotary positions inside attention (else learned position vectors added to the tokens)."""
        return self.rotary_emb is not None

    @property
    def qk_norm(self) -> bool:
        """Each query and key head is normalised before the rotation."""
        return self.q_norm is not None

    def attn_added(self, block: nn.Module) -> nn.Module:
        """The module whose output attention adds to the residual stream."""
        return self.attn_post_norm(block) or self.attention(block)

    def mlp_added(self, block: nn.Module) -> nn.Module:
        """The module whose output the MLP adds to the residual stream."""
        return self.mlp_post_norm(block) or self.mlp(block)

    def norms_per_block(self, block: nn.Module) -> int:
        """2 (before attention and before the MLP), plus Gemma's post-norms after each."""
        return 2 + (self.attn_post_norm(block) is not None) + (self.mlp_post_norm(block) is not None)


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
    mlp_in_norm=lambda b: b.ln_2,
    final_norm=lambda m: m.transformer.ln_f,
    mlp_up=lambda mlp: mlp.c_fc,
    mlp_act=lambda mlp: mlp.act,
    fused_qkv=lambda a: a.c_attn,
)

_LLAMA_TREE = dict(
    blocks=lambda m: m.model.layers,
    token_embedding=lambda m: m.model.embed_tokens,
    position_embedding=lambda m: None,
    attention=lambda b: b.self_attn,
    mlp=lambda b: b.mlp,
    mlp_down=lambda b: b.mlp.down_proj,
    attn_in_norm=lambda b: b.input_layernorm,
    attn_out_proj=lambda b: b.self_attn.o_proj,
    final_norm=lambda m: m.model.norm,
    mlp_up=lambda mlp: mlp.up_proj,
    mlp_act=lambda mlp: mlp.act_fn,
    mlp_gate=lambda mlp: mlp.gate_proj,
    rotary_emb=lambda m: m.model.rotary_emb,
)
_QK_NORMS = dict(q_norm=lambda a: a.q_norm, k_norm=lambda a: a.k_norm)

LLAMA = Architecture(family="llama", mlp_in_norm=lambda b: b.post_attention_layernorm, **_LLAMA_TREE)
QWEN3 = Architecture(family="qwen3", mlp_in_norm=lambda b: b.post_attention_layernorm, **_QK_NORMS, **_LLAMA_TREE)
GEMMA3 = Architecture(
    family="gemma3",
    mlp_in_norm=lambda b: b.pre_feedforward_layernorm,
    attn_post_norm=lambda b: b.post_attention_layernorm,
    mlp_post_norm=lambda b: b.post_feedforward_layernorm,
    norm_offset=1.0,
    **_QK_NORMS,
    **_LLAMA_TREE,
)

# model_type -> architecture. Llama-family models share Llama's module tree.
SUPPORTED: dict[str, Architecture] = {
    "gpt2": GPT2,
    "llama": LLAMA,
    "mistral": LLAMA,
    "qwen2": LLAMA,
    "qwen3": QWEN3,
    "gemma3_text": GEMMA3,
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
        first = arch.blocks(hf_model)[0]
        for name in ("attention", "mlp", "mlp_down", "attn_in_norm", "attn_out_proj", "mlp_in_norm",
                     "attn_added", "mlp_added"):
            getattr(arch, name)(first)
        attn, mlp = arch.attention(first), arch.mlp(first)
        projections = [arch.fused_qkv] if arch.fused_qkv else [arch.q_proj, arch.k_proj, arch.v_proj]
        for get in projections + [f for f in (arch.q_norm, arch.k_norm) if f is not None]:
            get(attn)
        for get in [arch.mlp_up, arch.mlp_act] + ([arch.mlp_gate] if arch.mlp_gate else []):
            get(mlp)
        if arch.rotary_emb is not None:
            arch.rotary_emb(hf_model)
        arch.final_norm(hf_model)
        arch.token_embedding(hf_model)
    except (AttributeError, IndexError, TypeError) as err:
        raise UnsupportedArchitecture(
            f"This '{arch.family}'-type model is missing a module the tracer needs ({err}). "
            "It may be a variant the tracer does not support yet."
        ) from err


# ---------------------------------------------------------------- per-layer facts


@dataclass(frozen=True)
class RotaryInfo:
    """Rotary position embedding parameters: pair i of a head rotates by pos * inv_freq[i].

    ``layers`` lists the blocks that use this base (Gemma 3 has two: local and global layers).
    """

    theta: float
    head_dim: int
    inv_freq: torch.Tensor           # (head_dim / 2,)
    layers: tuple[int, ...] = ()


def layer_types(hf_model: nn.Module) -> tuple[str, ...]:
    """"full_attention" or "sliding_attention" for every block (all full when the config says nothing)."""
    cfg = hf_model.config
    n = cfg.num_hidden_layers if hasattr(cfg, "num_hidden_layers") else cfg.n_layer
    types = getattr(cfg, "layer_types", None)
    return tuple(types) if types else ("full_attention",) * n


def sliding_window(hf_model: nn.Module, arch: Architecture, layer: int) -> int | None:
    """How many positions back (itself included) a query of ``layer`` can read; None = all of them."""
    attn = arch.attention(arch.blocks(hf_model)[layer])
    window = getattr(attn, "sliding_window", None)
    return int(window) if window else None


def rope_theta(hf_model: nn.Module, layer: int) -> float | None:
    """The rotary base of ``layer`` (None for models without rotary positions)."""
    cfg = hf_model.config
    params = getattr(cfg, "rope_parameters", None) or {}
    kind = layer_types(hf_model)[layer]
    if isinstance(params.get(kind), dict):                 # per layer type (Gemma 3)
        params = params[kind]
    theta = params.get("rope_theta", getattr(cfg, "rope_theta", None))
    return None if theta is None else float(theta)


def rotary_cos_sin(hf_model: nn.Module, arch: Architecture, layer: int, x: torch.Tensor,
                   positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's own rotary cos and sin for ``layer`` at ``positions``: each (T, head_dim)."""
    rotary = arch.rotary_emb(hf_model)
    if "layer_type" in inspect.signature(rotary.forward).parameters:     # one base per layer type
        cos, sin = rotary(x[None], positions[None], layer_types(hf_model)[layer])
    else:
        cos, sin = rotary(x[None], positions[None])
    return cos[0], sin[0]


def mlp_kind(hf_model: nn.Module, arch: Architecture) -> str:
    """"GELU" (a plain MLP, GPT-2), "SwiGLU" (gated with SiLU) or "GeGLU" (gated with GELU)."""
    if arch.mlp_gate is None:
        return "GELU"
    cfg = hf_model.config
    act = (getattr(cfg, "hidden_activation", None) or getattr(cfg, "hidden_act", "silu")).lower()
    return "GeGLU" if "gelu" in act else "SwiGLU"


def norm_gain(norm: nn.Module, arch: Architecture) -> torch.Tensor:
    """The per-dimension scale a norm applies after normalising: ``norm_offset + weight`` (Gemma's
    RMSNorm stores the offset from 1). (d,), float32 on the CPU."""
    weight = norm.weight.detach().float().cpu()
    return arch.norm_offset + weight if arch.norm_offset else weight


def norm_kind(arch: Architecture, hf_model: nn.Module) -> str:
    """"LayerNorm" (subtracts the mean) or "RMSNorm" (only divides by the root mean square)."""
    return "LayerNorm" if isinstance(arch.attn_in_norm(arch.blocks(hf_model)[0]), nn.LayerNorm) else "RMSNorm"


def unembed(hf_model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits from final-normed hidden states: [..., d_model] -> [..., vocab] (with any soft cap)."""
    logits = hf_model.get_output_embeddings()(x)
    cap = getattr(hf_model.config, "final_logit_softcapping", None)
    return logits if not cap else torch.tanh(logits / cap) * cap
