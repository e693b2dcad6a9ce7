"""Two next-token distributions side by side: an intervention, two prompts, or two models.

(The URL's ``"layer.head,…"`` format for switched-off parts is read in ``explainer.ui.frame.params``.)"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from explainer.devices import host
from explainer.tokens import token_labels

if TYPE_CHECKING:
    from explainer.analysis.attention import HeadStats
    from explainer.analysis.residual import LensReadout


@dataclass(frozen=True)
class DistributionChange:
    """How the next-token distribution moved from ``before`` to ``after``.

    ``ids`` is the union of both top-k lists, ordered by the larger of the two probabilities.
    """

    ids: tuple[int, ...]
    before: tuple[float, ...]
    after: tuple[float, ...]
    top_before: int
    top_after: int
    kl_bits: float               # KL(before ‖ after) in bits; 0 when identical
    total_variation: float       # half the L1 distance: the probability mass that moved
    labels: tuple[str, ...] = ()             # token labels of ``ids`` (with a model)
    top_labels: tuple[str, str] = ("", "")   # labels of ``top_before`` and ``top_after``

    def rows(self) -> list[dict[str, object]]:
        return [{"token": lab, "id": i, "before": b, "after": a, "change": a - b}
                for lab, i, b, a in zip(self.labels, self.ids, self.before, self.after)]

    @property
    def delta(self) -> tuple[float, ...]:
        return tuple(a - b for a, b in zip(self.after, self.before))

    @property
    def top_changed(self) -> bool:
        return self.top_before != self.top_after


def compare_distributions(before_logits: torch.Tensor, after_logits: torch.Tensor, k: int = 10,
                          model: Any = None) -> DistributionChange:
    """Compare two logit vectors over the same vocabulary (V,); with ``model`` (a LoadedModel), label the tokens."""
    if before_logits.shape != after_logits.shape:
        raise ValueError("Both distributions must cover the same vocabulary.")
    p = torch.softmax(host(before_logits).double(), -1)                 # (V,) on the host
    q = torch.softmax(host(after_logits).double(), -1)
    union = torch.unique(torch.cat([p.topk(k).indices, q.topk(k).indices]))
    order = torch.argsort(torch.maximum(p[union], q[union]), descending=True)
    ids = union[order]
    mask = p > 0
    kl = float((p[mask] * (torch.log2(p[mask]) - torch.log2(q[mask].clamp_min(1e-300)))).sum())
    shown = [int(i) for i in ids]
    tops = (int(p.argmax()), int(q.argmax()))
    names = token_labels(model, shown + list(tops)) if model is not None else ()
    return DistributionChange(
        ids=tuple(shown), before=tuple(float(p[i]) for i in ids),
        after=tuple(float(q[i]) for i in ids), top_before=tops[0], top_after=tops[1],
        kl_bits=max(kl, 0.0), total_variation=float((p - q).abs().sum() / 2),
        labels=tuple(names[:-2]), top_labels=(names[-2], names[-1]) if names else ("", ""))


@dataclass(frozen=True)
class HeadMapComparison:
    """One head statistic for two traces, (L, H) each; their difference when the shapes match."""

    stat: str
    left: np.ndarray
    right: np.ndarray

    def rows(self) -> dict[str, object]:
        return {"statistic": self.stat, "left": self.left.tolist(), "right": self.right.tolist()}

    @property
    def difference(self) -> np.ndarray | None:
        return self.right - self.left if self.left.shape == self.right.shape else None


def compare_head_maps(left: "HeadStats", right: "HeadStats", stat: str) -> HeadMapComparison:
    return HeadMapComparison(stat, left.get(stat).astype(np.float64), right.get(stat).astype(np.float64))


@dataclass(frozen=True)
class GrowthComparison:
    """The final answer's probability through the layers for two traces, on a 0–1 depth axis."""

    depth_left: np.ndarray       # (n_left + 1,) layer / n_layers
    probs_left: np.ndarray
    answer_left: str
    first_left: int
    depth_right: np.ndarray
    probs_right: np.ndarray
    answer_right: str
    first_right: int

    def rows(self) -> dict[str, object]:
        return {"left": {"answer": self.answer_left, "probability": self.probs_left.tolist()},
                "right": {"answer": self.answer_right, "probability": self.probs_right.tolist()}}


def compare_answer_growth(left: "LensReadout", right: "LensReadout") -> GrowthComparison:
    """Compare how each trace's last-position answer forms (models may differ in depth)."""
    def depth(readout: "LensReadout") -> np.ndarray:
        return np.arange(readout.n_layers + 1) / max(readout.n_layers, 1)

    return GrowthComparison(
        depth(left), left.answer_probs[:, -1].astype(np.float64), left.answer_labels[-1], left.first_layers[-1],
        depth(right), right.answer_probs[:, -1].astype(np.float64), right.answer_labels[-1], right.first_layers[-1])
