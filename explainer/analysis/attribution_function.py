"""The function input attribution explains: the target's probability after token vectors.

Called by Captum on the vectors (``inputs_embeds``), never on the shared model's modules: the
model is only called, with gradients flowing to our own input tensor. :class:`Probability` counts
the points it evaluates and reports them to ``progress`` (where a caller can also stop the work);
:mod:`explainer.analysis.attribution_inputs` holds the methods, the baseline and the limits.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from explainer.devices import to_device
from explainer.models import LoadedModel

Progress = Callable[[float, str], None]


def vectors(model: LoadedModel, ids: list[int], kept: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The token vectors the first block reads (1, T, d), and the baseline (only the ``kept`` positions kept)."""
    with torch.no_grad():
        x = model.arch.token_embedding(model.hf_model)(to_device(torch.tensor([ids]), model.device))
    x = x.detach().float().clone()                                         # (1, T, d) ours, not the model's
    at = to_device(torch.tensor(kept), x.device)
    base = torch.zeros_like(x).index_copy_(1, at, x.index_select(1, at))
    return x, base


def probabilities(model: LoadedModel, x: torch.Tensor) -> torch.Tensor:
    """Next-token probabilities (B, V) after token vectors (B, T, d), without gradients."""
    with torch.no_grad():
        logits = model.hf_model(inputs_embeds=x, use_cache=False, logits_to_keep=1).logits[:, -1]
        return torch.softmax(logits.float(), dim=-1)


class Probability:
    """f(δ) = the target's probability after the vectors ``baseline + δ`` (B, T, d) → (B,).

    Counts what it has evaluated and reports it to ``progress`` after every batch (which is also
    where a caller can stop the work): as ``done/total`` after :meth:`expect`, or, with
    ``quiet``, at the fraction its owner last set (``self.fraction``).
    """

    def __init__(self, model: LoadedModel, base: torch.Tensor, target: int, progress: Progress | None) -> None:
        self.model, self.base, self.target, self.progress = model, base, target, progress
        self.total, self.done, self.quiet, self.fraction, self.budget = 1, 0, False, 0.0, 0.0
        self.began = time.monotonic()

    def expect(self, total: int, quiet: bool = False, budget_s: float = 0.0) -> None:
        """A round of ``total`` points; ``quiet``: report the owner's fraction, or the share of
        ``budget_s`` spent when that is further along."""
        self.total, self.done, self.quiet, self.budget = max(1, total), 0, quiet, budget_s
        self.began = time.monotonic()

    def values(self, delta: torch.Tensor) -> torch.Tensor:
        """f without counting (path ends, no gradients)."""
        logits = self.model.hf_model(inputs_embeds=self.base + delta, use_cache=False, logits_to_keep=1).logits
        return torch.softmax(logits[:, -1].float(), dim=-1)[:, self.target]   # (B,)

    def __call__(self, delta: torch.Tensor) -> torch.Tensor:
        out = self.values(delta)
        self.done += delta.shape[0]
        if self.progress is not None:
            if self.quiet:
                spent = (time.monotonic() - self.began) / self.budget if self.budget > 0 else 0.0
                self.progress(max(self.fraction, min(spent, 0.99)), f"{self.done} points")
            else:
                done = min(self.done, self.total)
                self.progress(done / self.total, f"{done}/{self.total}")
        return out
