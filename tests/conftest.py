"""Shared fixtures: tiny random models (GPT-2 and Llama paths) and the real default model.

Markers are checked at collection: a test under ``tests/integration`` or one that asks for the
real ``default_model`` must carry ``integration``, and one under ``tests/e2e`` must carry ``slow``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import explainer
from explainer.models import default_tokenizer, wrap


@pytest.fixture(scope="session")
def tokenizer():
    """The default model's real tokenizer (converted once into the user cache)."""
    return default_tokenizer()


def _tiny_gpt2(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=4)
    return wrap(GPT2LMHeadModel(cfg), tokenizer, "tiny-gpt2")


def _tiny_llama(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return wrap(LlamaForCausalLM(cfg), tokenizer, "tiny-llama")


@pytest.fixture(scope="session")
def tiny_gpt2(tokenizer):
    """GPT-2 architecture (Conv1D, learned positions, LayerNorm, GELU), random weights, 2 layers."""
    return _tiny_gpt2(tokenizer)


@pytest.fixture(scope="session")
def tiny_llama(tokenizer):
    """Llama architecture (RoPE, GQA 4/2 heads, RMSNorm, SwiGLU), random weights, 2 layers."""
    return _tiny_llama(tokenizer)


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def tiny_model(request, tokenizer):
    """Each tiny architecture in turn."""
    return _tiny_gpt2(tokenizer) if request.param == "gpt2" else _tiny_llama(tokenizer)


@pytest.fixture(scope="session")
def default_model():
    """The real embedded SmolLM2-135M."""
    return explainer.load_model()


def pytest_collection_modifyitems(config, items):
    """Refuse to run tests whose markers do not say what they need (``-m`` would mis-select them)."""
    wrong = []
    for item in items:
        parts = Path(str(item.fspath)).parts
        real = "integration" in parts or "default_model" in getattr(item, "fixturenames", ())
        if real and item.get_closest_marker("integration") is None:
            wrong.append(f"{item.nodeid}: uses the real model, mark it integration")
        if "e2e" in parts and item.get_closest_marker("slow") is None:
            wrong.append(f"{item.nodeid}: drives a browser, mark it slow")
    if wrong:
        raise pytest.UsageError("Tests with missing markers:\n" + "\n".join(wrong))
