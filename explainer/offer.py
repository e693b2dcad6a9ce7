"""What a server offers: the models a link or the model box may load, and each one's size first.

- ``LLM_EXPLAINER_MODELS`` (comma-separated names, e.g. ``smollm2-135m,gemma-3-270m``): when set,
  only those load (:class:`ModelNotOffered` otherwise), so no link makes a shared server read a
  folder of its choosing or fetch a hub id. Unset, any name loads, as on your own machine.
  ``random-gpt2`` (built from code, reads no file, 7 M parameters) is always there: it is the
  untrained model that pages put beside the trained one.
- Every load is sized before any weight is read: from the embedded models' known shapes, or from
  the config alone (the model built on PyTorch's "meta" device, which allocates nothing). Float32
  weights over :func:`explainer.budget.model_budget_bytes` raise :class:`ModelTooLarge`.
"""
from __future__ import annotations

import os
from typing import Any

from explainer.budget import TooLarge, model_budget_bytes
from explainer.numbers import human_bytes

MODELS_ENV = "LLM_EXPLAINER_MODELS"
ALWAYS = ("random-gpt2",)
KNOWN_PARAMETERS = {                      # measured: README's model table
    "smollm2-135m": 134_515_008,
    "gemma-3-270m": 268_098_176,
    "random-gpt2": 7_215_872,
}
BYTES_PER_PARAMETER = 4                   # every model is kept in float32 (explainer.models.wrap)


class ModelNotOffered(ValueError):
    """This server does not offer that model; ``offered`` lists what it does."""

    def __init__(self, name: str, offered: tuple[str, ...]) -> None:
        self.name, self.offered = name, offered
        super().__init__(f"This server offers only {', '.join(offered)}; '{name[:80]}' cannot be loaded here.")


class ModelTooLarge(TooLarge):
    """A model whose weights would not fit this server's model budget (nothing was read)."""

    def __init__(self, name: str, need: int, limit: int) -> None:
        super().__init__(f"Loading '{name[:80]}' would need about {human_bytes(need)} for its weights, more than the "
                         f"{human_bytes(limit)} this server allows for one model (LLM_EXPLAINER_MODEL_GB). "
                         "Choose a smaller model.", need, limit)
        self.name = name


def offered() -> tuple[str, ...] | None:
    """The models this server offers (``LLM_EXPLAINER_MODELS``), or None when any may load."""
    raw = os.environ.get(MODELS_ENV, "")
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    return names or None


def is_offered(name: str) -> bool:
    names = offered()
    return names is None or name in names or name in ALWAYS


def default_for(preferred: str) -> str:
    """``preferred`` (a language's default model) when it is offered, else the first offered."""
    names = offered()
    return preferred if names is None or preferred in names else names[0]


def choices(usual: tuple[str, ...]) -> tuple[str, ...]:
    """What a model box offers: ``usual`` unless a list is set, then the list and the untrained model."""
    names = offered()
    return usual if names is None else tuple(dict.fromkeys([*names, *ALWAYS]))


def admit(name: str) -> None:
    """Refuse ``name`` unless it is offered; size a model whose shape is known already."""
    if not is_offered(name):
        raise ModelNotOffered(name, offered() or ())
    if name in KNOWN_PARAMETERS:
        check_size(name, KNOWN_PARAMETERS[name])


def parameters_of(config: Any) -> int:
    """How many parameters a model of ``config`` has (tied weights once), without allocating them."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def check_size(name: str, parameters: int) -> None:
    """Raise :class:`ModelTooLarge` when ``parameters`` float32 weights exceed the model budget."""
    need, limit = parameters * BYTES_PER_PARAMETER, model_budget_bytes()
    if need > limit:
        raise ModelTooLarge(name, need, limit)


def admit_config(name: str, config: Any) -> None:
    """Size a model from its config alone (before any weight is read)."""
    check_size(name, parameters_of(config))
