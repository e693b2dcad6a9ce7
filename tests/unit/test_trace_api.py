"""Trace's public names are a contract, as TransformerLens pins its hook names: a notebook, a page or
a saved analysis reads them. Adding, renaming or removing one fails here first, on purpose; change
the list together with README's library section."""
from __future__ import annotations

import dataclasses

from explainer.shape import ModelShape
from explainer.trace import Trace

# Grouped as the Trace's docstring groups them; every name here is public API.
KEPT = ("model_name", "text", "token_ids", "tokens", "token_bytes", "truncated", "arch", "shape", "precision",
        "rotary", "rotaries", "windows", "ablated_heads", "ablated_mlps", "n_tokens", "device", "residual", "stream",
        "stream_at", "next_token_logits", "write_norms", "mlp_peaks", "kept_bytes", "cache_budget", "nbytes")
SIZES = ("n_layers", "n_heads", "n_kv_heads", "head_dim", "d_model", "d_mlp", "vocab_size", "context_length")
ON_DEMAND = ("model", "parts", "qkv", "block_check", "rows", "attention", "attentions", "attn_out_at", "mlp_out_at",
             "mid", "mlp_activation", "attn_out", "mlp_out", "mlp_activations", "logits_at", "logits", "embeddings",
             "positions")
FILES = ("save", "to_bytes", "metadata", "load")


def public_names(cls: type) -> set[str]:
    fields = {f.name for f in dataclasses.fields(cls)}
    return {n for n in set(dir(cls)) | fields if not n.startswith("_")}


def test_the_trace_answers_to_exactly_these_names():
    pinned = KEPT + SIZES + ON_DEMAND + FILES
    assert len(pinned) == len(set(pinned))
    assert public_names(Trace) == set(pinned)


def test_the_sizes_are_the_model_shape():
    assert {f.name for f in dataclasses.fields(ModelShape)} == set(SIZES)
    assert not set(SIZES) & {f.name for f in dataclasses.fields(Trace)}      # read through ``shape``, not kept twice
