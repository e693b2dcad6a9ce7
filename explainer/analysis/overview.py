"""The whole journey in numbers: live shapes for this prompt, the model card, and its scale."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from explainer.analysis.params import REFERENCE_MODELS, ParameterCount, count_parameters
from explainer.analysis.prediction import softmax_probs
from explainer.arch import mlp_kind, norm_kind, rope_theta, sliding_window
from explainer.embedded import EMBEDDED
from explainer.models import LoadedModel
from explainer.shape import ModelShape, Sized
from explainer.tokens import token_labels
from explainer.trace import Trace


@dataclass(frozen=True)
class Journey(Sized):
    """Every stage's size for one prompt, and where it ends: the predicted next token."""

    text: str
    n_chars: int
    n_tokens: int
    shape: ModelShape                    # the model's sizes (d_model, n_layers, … read through it)
    rotary: bool                         # rotary positions (inside attention) vs learned vectors
    next_ids: tuple[int, ...]            # the top few next tokens, most likely first
    next_labels: tuple[str, ...]
    next_probs: tuple[float, ...]
    embed_scale: float | None = None     # token vectors multiplied by this as they enter (Gemma: √d)
    n_local: int = 0                     # layers that read only a window of recent tokens
    window: int | None = None            # that window

    @property
    def top_label(self) -> str:
        return self.next_labels[0]

    def rows(self) -> dict[str, object]:
        """The shape of every stage, the number of blocks and the top next tokens."""
        stages = {"tokens": [self.n_tokens], "vectors": [self.n_tokens, self.d_model],
                  "residual": [self.n_tokens, self.d_model], "logits": [self.n_tokens, self.vocab_size],
                  "probabilities": [self.vocab_size]}
        return {"stages": [{"stage": k, "shape": v} for k, v in stages.items()], "blocks": self.n_layers,
                "next_tokens": [{"token": lab, "id": i, "probability": p}
                                for lab, i, p in zip(self.next_labels, self.next_ids, self.next_probs)]}

    @property
    def top_prob(self) -> float:
        return self.next_probs[0]


@dataclass(frozen=True)
class ModelCard(Sized):
    """What the model is: sizes, shape of its blocks, and where its parameters sit."""

    name: str
    family: str                          # "gpt2" | "llama" | "qwen3" | "gemma3"
    shape: ModelShape                    # n_layers, n_heads, n_kv_heads, head_dim, d_model, … read through it
    device: str
    rotary: bool
    tied_head: bool                      # the output head reuses the embedding matrix
    parameters: ParameterCount
    mlp_kind: str = "GELU"               # "GELU" | "SwiGLU" | "GeGLU"
    norm_kind: str = "LayerNorm"         # "LayerNorm" | "RMSNorm"
    norms_per_block: int = 2             # Gemma 3: 4 (before and after attention and the MLP)
    qk_norm: bool = False                # each head's queries and keys are normalised too
    windows: tuple[int | None, ...] = () # per layer: the window it reads (None: the whole text)
    embed_scale: float | None = None     # token vectors multiplied by this as they enter (Gemma: √d)
    rotary_bases: tuple[float, ...] = () # every rotary base, smallest first
    licence: str = ""                    # the licence of an embedded model ("" for others)

    @property
    def local_layers(self) -> tuple[int, ...]:
        return tuple(l for l, w in enumerate(self.windows) if w is not None)

    @property
    def window(self) -> int | None:
        return max((w for w in self.windows if w is not None), default=None)

    def rows(self) -> list[dict[str, object]]:
        return [{"component": c, "parameters": n} for c, n in self.parameters.by_component.items()]


@dataclass(frozen=True)
class Scale:
    """Total parameters of this model beside the reference GPTs, smallest first."""

    names: tuple[str, ...]
    totals: tuple[int, ...]
    this_index: int                      # which entry is the loaded model

    def rows(self) -> list[dict[str, object]]:
        return [{"model": name, "parameters": total} for name, total in zip(self.names, self.totals)]


def journey(model: LoadedModel, trace: Trace, show: int = 3) -> Journey:
    """Live shapes of every stage for ``trace`` and the model's top next tokens."""
    probs = softmax_probs(trace.next_token_logits)               # (V,) float64
    top_p, top_i = torch.topk(probs, min(show, probs.numel()))
    ids = [int(i) for i in top_i]
    labels = token_labels(model, ids)
    return Journey(
        text=trace.text, n_chars=len(trace.text), n_tokens=trace.n_tokens, shape=trace.shape, rotary=trace.rotary is not None, next_ids=tuple(ids), next_labels=tuple(labels),
        next_probs=tuple(float(p) for p in top_p), embed_scale=embedding_scale(model),
        n_local=sum(w is not None for w in trace.windows),
        window=max((w for w in trace.windows if w is not None), default=None))


def model_card(model: LoadedModel) -> ModelCard:
    """Sizes of the loaded model and its parameter count by component."""
    hf, arch = model.hf_model, model.arch
    block = arch.blocks(hf)[0]
    head = hf.get_output_embeddings().weight
    tied = head is model.arch.token_embedding(hf).weight
    return ModelCard(
        name=model.name, family=model.arch.family, shape=model.shape, device=str(model.device),
        rotary=model.arch.rotary, tied_head=tied, parameters=count_parameters(model),
        mlp_kind=mlp_kind(hf, arch), norm_kind=norm_kind(arch, hf), norms_per_block=arch.norms_per_block(block),
        qk_norm=arch.qk_norm,
        windows=tuple(sliding_window(hf, arch, l) for l in range(model.n_layers)), embed_scale=embedding_scale(model),
        rotary_bases=tuple(sorted({t for l in range(model.n_layers) if (t := rope_theta(hf, l)) is not None}))
        if arch.rotary else (), licence=EMBEDDED[model.name].licence if model.name in EMBEDDED else "")


def embedding_scale(model: LoadedModel) -> float | None:
    """The factor the embedding module multiplies token vectors by (Gemma: √d_model), or None."""
    scale = getattr(model.arch.token_embedding(model.hf_model), "embed_scale", None)
    return None if scale is None else float(scale)


def scale(card: ModelCard, references: tuple[ParameterCount, ...] = REFERENCE_MODELS) -> Scale:
    """This model's total beside the references, ordered by size."""
    entries = [(card.name, card.parameters.total, True)] + [(r.name, r.total, False) for r in references]
    entries.sort(key=lambda e: e[1])
    return Scale(names=tuple(e[0] for e in entries), totals=tuple(e[1] for e in entries),
                 this_index=next(i for i, e in enumerate(entries) if e[2]))
