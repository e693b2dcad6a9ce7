"""What the Learning page draws, as results with ``rows()``: the figure builders' inputs.

Series are named by *text keys* (``"unigram"``, ``"neural"``, ``"before_ft"`` …), never by words:
the figure looks each name up in the page's texts, so every chart follows the language.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from explainer.learning.tiny import AttentionMap, NextTokenDistribution, TokenProb
from explainer.learning.trainer import Checkpoint, TrainingSnapshot


def distribution_dict(dist: NextTokenDistribution) -> dict[str, float]:
    """{token: probability} of a next-token distribution."""
    return {p.token: p.prob for p in dist.top}


@dataclass(frozen=True)
class LossCurves:
    """Training loss per step, held-out loss at checkpoints, and flat baselines (text key → loss)."""

    train_loss: tuple[float, ...]
    heldout_loss: tuple[tuple[int, float], ...]
    baselines: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, snap: TrainingSnapshot) -> "LossCurves":
        return cls(tuple(snap.train_loss), tuple(snap.heldout_loss))

    def rows(self) -> list[dict[str, object]]:
        """One row per step: its training loss and, where measured, the held-out loss (else None)."""
        heldout = dict(self.heldout_loss)
        steps = sorted(set(range(1, len(self.train_loss) + 1)) | set(heldout))
        return [{"step": s, "train_loss": self.train_loss[s - 1] if 0 < s <= len(self.train_loss) else None,
                 "heldout_loss": heldout.get(s)} for s in steps]


@dataclass(frozen=True)
class ProbesBeforeAfter:
    """Each probe prompt's top next tokens at two checkpoints (step 0 and a later one)."""

    before: Checkpoint
    after: Checkpoint

    def rows(self) -> dict[str, object]:
        return {"step": self.after.step, "probes": {d.prompt: distribution_dict(d) for d in self.after.probes}}


@dataclass(frozen=True)
class AttentionBeforeAfter:
    """One head's attention on the same sentence before and after training."""

    before: AttentionMap
    after: AttentionMap
    layer: int
    head: int


@dataclass(frozen=True)
class ModelsOnProbes:
    """Per prompt, several models' next-token probabilities: (prompt, {text key: {token: p}})."""

    panels: tuple[tuple[str, Mapping[str, Mapping[str, float]]], ...]
    top: int = 4                       # each model's top tokens that get a bar

    def rows(self) -> dict[str, object]:
        return {prompt: {name: dict(probs) for name, probs in series.items()} for prompt, series in self.panels}


@dataclass(frozen=True)
class HeldoutScores:
    """Held-out cross-entropy (nats per token) per model (text key → loss)."""

    scores: Mapping[str, float]

    def rows(self) -> dict[str, object]:
        return dict(self.scores)


@dataclass(frozen=True)
class Masks:
    """Which positions each token may look at: GPT (causal) and BERT (everything). Masks (T, T)."""

    tokens: tuple[str, ...]
    gpt: np.ndarray
    bert: np.ndarray


@dataclass(frozen=True)
class ObjectiveLosses:
    """Both objectives' training loss per step."""

    gpt_loss: tuple[float, ...]
    bert_loss: tuple[float, ...]

    def rows(self) -> dict[str, object]:
        return {"gpt": list(self.gpt_loss), "bert": list(self.bert_loss)}


@dataclass(frozen=True)
class FillTheBlank:
    """GPT's next word after the text left of the blank, beside BERT's word for the blank."""

    left: str                          # the text GPT reads
    gpt: tuple[TokenProb, ...]
    bert: tuple[TokenProb, ...]

    def rows(self) -> dict[str, object]:
        return {"gpt": {p.token: p.prob for p in self.gpt}, "bert": {p.token: p.prob for p in self.bert}}


def probe_panels(prompts: Sequence[str],
                 series: Mapping[str, Mapping[str, Mapping[str, float]]]) -> ModelsOnProbes:
    """Regroup {text key: {prompt: {token: p}}} per prompt, keeping the order of ``series``."""
    return ModelsOnProbes(tuple((p, {name: by_prompt[p] for name, by_prompt in series.items()}) for p in prompts))
