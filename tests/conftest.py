"""Shared fixtures: tiny random models of every family the tracer knows, and the real models.

Markers are checked at collection: a test under ``tests/integration`` or one that asks for a
real model (``default_model``, ``gemma_model``) must carry ``integration``, one under
``tests/e2e`` must carry ``slow``, and one under ``tests/cuda`` must carry ``cuda`` (and skips
itself where there is no CUDA device).
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as `import explainer` sets it, but torch comes first here

import pytest  # noqa: E402
import torch  # noqa: E402

os.environ.setdefault("LLM_EXPLAINER_VALIDATE_FIGURES", "1")    # every figure checked by plotly in the tests

import explainer  # noqa: E402  (after the setting above: explainer.figures.theme reads it on import)
from explainer.models import default_tokenizer, wrap  # noqa: E402

FAMILIES = ("gpt2", "llama", "qwen3", "gemma3")


@pytest.fixture(scope="session")
def tokenizer():
    """The default model's real tokenizer (converted once into the user cache)."""
    return default_tokenizer()


def tiny_hf_model(family: str, vocab_size: int):
    """A 2–3 layer random model of ``family`` (the HF module, before :func:`wrap`)."""
    from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                              LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM)
    torch.manual_seed(0)
    if family == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_positions=128, n_embd=32, n_layer=2, n_head=4))
    if family == "llama":
        return LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                            max_position_embeddings=128))
    if family == "qwen3":
        return Qwen3ForCausalLM(Qwen3Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                            head_dim=8, max_position_embeddings=128))
    # Gemma 3 as the real one is built, shrunk: 4 query heads on 1 key/value head, two local
    # layers with an 8-token window (base 10,000) and one global layer (base 1,000,000).
    model = Gemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
        max_position_embeddings=256, layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                         "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0}}))
    with torch.no_grad():                 # Gemma norms start at 0 (scale 1 + w); give them real work
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(0.0, 0.3)
    return model


def tiny(family: str, tokenizer):
    return wrap(tiny_hf_model(family, len(tokenizer)), tokenizer, f"tiny-{family}")


@pytest.fixture(scope="session")
def tiny_gpt2(tokenizer):
    """GPT-2 architecture (Conv1D, learned positions, LayerNorm, GELU), random weights, 2 layers."""
    return tiny("gpt2", tokenizer)


@pytest.fixture(scope="session")
def tiny_llama(tokenizer):
    """Llama architecture (RoPE, GQA 4/2 heads, RMSNorm, SwiGLU), random weights, 2 layers."""
    return tiny("llama", tokenizer)


@pytest.fixture(scope="session")
def tiny_qwen3(tokenizer):
    """Qwen3 architecture (Llama's plus q/k norms), random weights, 2 layers."""
    return tiny("qwen3", tokenizer)


@pytest.fixture(scope="session")
def tiny_gemma3(tokenizer):
    """Gemma 3 architecture (four norms per block, GeGLU, √d embeddings, local + global layers)."""
    return tiny("gemma3", tokenizer)


@pytest.fixture(scope="session", params=FAMILIES)
def tiny_model(request, tokenizer):
    """Each tiny architecture in turn."""
    return tiny(request.param, tokenizer)


@pytest.fixture(scope="session")
def default_model():
    """The real embedded SmolLM2-135M."""
    return explainer.load_model()


@pytest.fixture(scope="session")
def gemma_model():
    """The real embedded Gemma 3 270M."""
    return explainer.load_model("gemma-3-270m")


@pytest.fixture(scope="session")
def serving_cluster():
    """A real local cluster (a Ray head, SmolLM2 on two CPU workers) started with ``cluster up``; its
    URL. ``cluster down`` at the end of the session."""
    from tests.serving_helpers import CLUSTER_PORT, CLUSTER_RAY_PORT, cluster_command
    up = cluster_command("up", "--workers", "2", "--port", str(CLUSTER_PORT), "--ray-port", str(CLUSTER_RAY_PORT))
    if up.returncode != 0:
        cluster_command("down")
        pytest.fail(f"cluster up failed:\n{up.stderr[-3000:]}")
    yield up.stdout.strip().splitlines()[-1]
    cluster_command("down")


def pytest_collection_modifyitems(config, items):
    """Refuse to run tests whose markers do not say what they need (``-m`` would mis-select them)."""
    wrong = []
    for item in items:
        parts = Path(str(item.fspath)).parts
        real = "integration" in parts or {"default_model", "gemma_model"} & set(getattr(item, "fixturenames", ()))
        if real and item.get_closest_marker("integration") is None:
            wrong.append(f"{item.nodeid}: uses the real model, mark it integration")
        if "e2e" in parts and item.get_closest_marker("slow") is None:
            wrong.append(f"{item.nodeid}: drives a browser, mark it slow")
        if "cuda" in parts and item.get_closest_marker("cuda") is None:
            wrong.append(f"{item.nodeid}: needs a GPU, mark it cuda")
    if wrong:
        raise pytest.UsageError("Tests with missing markers:\n" + "\n".join(wrong))
