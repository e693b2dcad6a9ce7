"""Plain Hugging Face forwards to hold the tracer against (no hooks, no explainer code)."""
from __future__ import annotations

import copy
from functools import lru_cache

import torch


@lru_cache(maxsize=4)
def eager_copy(model):
    """A private copy of ``model.hf_model`` with eager attention, the only kind that returns weights."""
    ref = copy.deepcopy(model.hf_model)
    ref.set_attn_implementation("eager")
    return ref.eval()


def eager_forward(model, ids: torch.Tensor):
    """Logits, attention weights and hidden states of a plain eager forward of ``ids`` (T,)."""
    with torch.no_grad():
        return eager_copy(model)(input_ids=ids[None], output_attentions=True, output_hidden_states=True,
                                 use_cache=False)


def plain_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits (T, V) of a plain forward as the model is loaded (sdpa, the fastest)."""
    with torch.no_grad():
        return model.hf_model(input_ids=ids[None], use_cache=False).logits[0]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to the largest value (the scale the numbers live on)."""
    return float((a - b).abs().max() / b.abs().max())
