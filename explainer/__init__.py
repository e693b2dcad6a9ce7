"""LLM Explainer: see every stage of a real language model's forward pass.

    >>> import explainer
    >>> model = explainer.load_model()            # embedded SmolLM2-135M, offline
    >>> t = explainer.trace(model, "The capital of France is")
    >>> t.tokens, t.attention(0).shape, t.logits.shape
"""
import os

# Before torch starts OpenMP: its threads sleep at a barrier instead of spinning. Where more threads
# want the cores than there are (pages drawing while background jobs compute, two cores shared),
# spinning threads hold the cores their partners need: measured on two busy cores, a 34-token trace
# plus head statistics took 5–17 s spinning and 0.4–0.8 s sleeping. A value already set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from explainer.arch import UnsupportedArchitecture
from explainer.models import DEFAULT_NAME, RANDOM_GPT2, LoadedModel, ModelLoadError, load_model, wrap
from explainer.trace import RotaryInfo, Trace
from explainer.tracing import DEFAULT_MAX_TOKENS, tokenize, trace

__all__ = [
    "DEFAULT_MAX_TOKENS", "DEFAULT_NAME", "RANDOM_GPT2", "LoadedModel", "ModelLoadError", "RotaryInfo",
    "Trace", "UnsupportedArchitecture", "load_model", "tokenize", "trace", "wrap",
]
