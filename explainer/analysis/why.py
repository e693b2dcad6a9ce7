"""Why this answer? What the page shows, as results with ``rows()``: each component's push on the
answer, and the push the attribution predicted beside the change switching parts off really made.

The numbers come from :mod:`explainer.analysis.attribution` (direct logit attribution) and
:mod:`explainer.analysis.attribution_inputs` (input attribution); here they get the token labels
and the three parts that push most. Words are the page's (``explainer.ui.sections.why``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from explainer.analysis.attribution import (Component, LogitAttribution, direct_logit_attribution,
                                            predicted_change, top_components)
from explainer.devices import host
from explainer.memo import per_trace
from explainer.models import LoadedModel
from explainer.tokens import token_labels
from explainer.trace import Trace


@dataclass(frozen=True)
class AnswerPushes:
    """How much each head, MLP layer, the embedding and the biases pushed one answer's logit.

    ``attribution.total`` is the answer's logit (or answer − contrast); ``top_heads`` and
    ``top_mlps`` are (at most) the three that pushed it up most.
    """

    attribution: LogitAttribution
    target_label: str
    contrast_label: str | None
    probability: float                       # the answer's probability after the text
    contrast_probability: float | None
    top_heads: tuple[Component, ...]
    top_mlps: tuple[Component, ...]
    ablated_heads: frozenset = frozenset()   # switched off in the trace explained (their push is 0)
    ablated_mlps: frozenset = frozenset()

    @property
    def n_layers(self) -> int:
        return int(self.attribution.heads.shape[0])

    def rows(self) -> list[dict]:
        """One record per component (embedding, each head, each MLP, biases) with the answer's label."""
        extra = {"answer": self.target_label, "compared_with": self.contrast_label or ""}
        return [{**row, **extra} for row in self.attribution.rows()]


@per_trace
def answer_pushes(model: LoadedModel, trace: Trace, target: int | str | None = None,
                  contrast: int | str | None = None) -> AnswerPushes:
    """Direct logit attribution of ``target`` (default: the top prediction), labelled for the page.

    Raises :class:`~explainer.analysis.attribution.TargetError` for a target that is not one token.
    """
    a = direct_logit_attribution(model, trace, target, contrast)
    ids = [a.target] + ([a.contrast] if a.contrast is not None else [])
    labels = token_labels(model, ids)
    probs = torch.softmax(host(trace.next_token_logits).double(), -1)      # (V,)
    return AnswerPushes(
        a, labels[0], labels[1] if a.contrast is not None else None, float(probs[a.target]),
        float(probs[a.contrast]) if a.contrast is not None else None,
        tuple(c for c in top_components(a, 3, "up", kinds=("head",)) if c.value > 0),
        tuple(c for c in top_components(a, 3, "up", kinds=("mlp",)) if c.value > 0),
        trace.ablated_heads, trace.ablated_mlps)


@dataclass(frozen=True)
class SwitchOffCheck:
    """Switching components off: the change the attribution predicted beside the change measured.

    ``predicted``: first order, each component's own push removed and nothing else moving;
    ``measured``: the same logit (or difference) read from a forward pass with them off.
    """

    target_label: str
    contrast_label: str | None
    heads_off: tuple[tuple[int, int], ...]
    mlps_off: tuple[int, ...]
    logit_before: float
    logit_after: float
    predicted: float
    probability_before: float
    probability_after: float

    @property
    def measured(self) -> float:
        return self.logit_after - self.logit_before

    def rows(self) -> dict[str, object]:
        return {"answer": self.target_label, "compared_with": self.contrast_label,
                "heads_off": [f"{l}.{h}" for l, h in self.heads_off], "mlps_off": list(self.mlps_off),
                "logit_before": self.logit_before, "logit_after": self.logit_after,
                "predicted_change": self.predicted, "measured_change": self.measured,
                "probability_before": self.probability_before, "probability_after": self.probability_after}


def switch_off_check(pushes: AnswerPushes, after: Trace) -> SwitchOffCheck:
    """Compare what ``pushes`` predicted for the parts ``after`` switched off with what ``after`` shows.

    ``pushes`` must explain the trace of the same text with nothing switched off.
    """
    a = pushes.attribution
    heads, mlps = tuple(sorted(after.ablated_heads)), tuple(sorted(after.ablated_mlps))
    logits = host(after.next_token_logits).double()                         # (V,)
    logit_after = float(logits[a.target] - (logits[a.contrast] if a.contrast is not None else 0.0))
    probs = torch.softmax(logits, -1)
    return SwitchOffCheck(pushes.target_label, pushes.contrast_label, heads, mlps, a.total, logit_after,
                          predicted_change(a, heads, mlps), pushes.probability, float(probs[a.target]))
