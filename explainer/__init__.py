"""LLM Explainer: see every stage of a real language model's forward pass.

    >>> import explainer
    >>> model = explainer.load_model()            # embedded SmolLM2-135M, offline
    >>> t = explainer.trace(model, "The capital of France is")
    >>> t.tokens, t.attention(0).shape, t.logits.shape
"""
from explainer.arch import UnsupportedArchitecture
from explainer.models import DEFAULT_NAME, RANDOM_GPT2, LoadedModel, ModelLoadError, load_model, wrap
from explainer.trace import RotaryInfo, Trace
from explainer.tracing import DEFAULT_MAX_TOKENS, tokenize, trace

__all__ = [
    "DEFAULT_MAX_TOKENS", "DEFAULT_NAME", "RANDOM_GPT2", "LoadedModel", "ModelLoadError", "RotaryInfo",
    "Trace", "UnsupportedArchitecture", "load_model", "tokenize", "trace", "wrap",
]
