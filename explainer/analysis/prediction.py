"""The next-token distribution and how sampling settings reshape it."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch

from explainer.devices import host
from explainer.memo import per_trace
from explainer.tokens import legible, pending, token_pieces


@dataclass(frozen=True)
class Distribution:
    """Probabilities over the vocabulary after temperature, top-k and top-p.

    ``top_ids``/``top_probs`` are the ``show`` most likely tokens of the *original*
    softmax; ``top_adjusted`` their probability after the settings (0 if removed).
    """

    temperature: float
    top_k: int | None
    top_p: float | None
    top_ids: tuple[int, ...]
    top_probs: tuple[float, ...]
    top_adjusted: tuple[float, ...]
    kept: int                  # how many tokens keep a non-zero probability
    entropy_bits: float        # entropy of the original softmax (temperature 1)
    adjusted_entropy_bits: float
    vocab_size: int
    top_labels: tuple[str, ...] = ()     # token labels of ``top_ids`` (see :func:`next_token`)
    top_bytes: tuple[bytes, ...] = ()    # their bytes
    context: bytes = b""                 # the bytes of a character the prompt left unfinished

    def rows(self) -> list[dict[str, object]]:
        return [{"rank": r, "token": lab, "id": i, "probability": p, "after_settings": a}
                for r, (lab, i, p, a) in enumerate(zip(self.top_labels, self.top_ids, self.top_probs,
                                                        self.top_adjusted), start=1)]


def softmax_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / T) in float64 for exact sums; T → 0 approaches greedy (one-hot)."""
    if temperature <= 0:
        raise ValueError("Temperature must be above 0.")
    return torch.softmax(host(logits).double() / temperature, dim=-1)


def adjusted_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> torch.Tensor:
    """The sampling distribution: temperature, then keep the top-k, then the top-p nucleus, renormalised."""
    probs = softmax_probs(logits, temperature)                    # (V,)
    cut_k, cut_p = top_k is not None and 0 < top_k < probs.numel(), top_p is not None and 0 < top_p < 1
    if not cut_k and not cut_p:                                   # nothing removed: no sort (262,144 tokens)
        return probs
    keep = torch.ones_like(probs, dtype=torch.bool)
    order = torch.argsort(probs, descending=True)
    if cut_k:
        keep[order[top_k:]] = False
    if cut_p:
        sorted_probs = probs[order] * keep[order]
        sorted_probs = sorted_probs / sorted_probs.sum()
        before = torch.cumsum(sorted_probs, 0) - sorted_probs     # mass before each token
        keep[order[before >= top_p]] = False                      # always keeps the first token
    out = probs * keep
    return out / out.sum()


def entropy_bits(probs: torch.Tensor) -> float:
    p = probs[probs > 0]
    return float(-(p * torch.log2(p)).sum())


def next_token_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None, show: int = 20) -> Distribution:
    """Summarise one position's logits (V,) for the Next token page."""
    base = softmax_probs(logits)
    adjusted = adjusted_probs(logits, temperature, top_k, top_p)
    top_probs, top_ids = torch.topk(base, min(show, base.numel()))
    return Distribution(
        temperature=float(temperature), top_k=top_k, top_p=top_p,
        top_ids=tuple(int(i) for i in top_ids), top_probs=tuple(float(p) for p in top_probs),
        top_adjusted=tuple(float(adjusted[i]) for i in top_ids),
        kept=int((adjusted > 0).sum()), entropy_bits=entropy_bits(base),
        adjusted_entropy_bits=entropy_bits(adjusted), vocab_size=int(base.numel()),
    )


def sample(probs: torch.Tensor, seed: int) -> int:
    """Draw one token id from ``probs`` with a private generator (reproducible, thread-safe)."""
    gen = torch.Generator().manual_seed(int(seed))
    return int(torch.multinomial(probs.float(), 1, generator=gen))


def perplexity(bits: float) -> float:
    return math.pow(2.0, bits)


@dataclass(frozen=True)
class NucleusCurve:
    """Tokens in order of probability (after temperature and top-k) with the running total.

    Top-p keeps tokens while the mass *before* them is below p, so ``kept[i]`` is True for
    the first token whose running total reaches p and every token before it.
    """

    ids: tuple[int, ...]
    probs: tuple[float, ...]          # after temperature and top-k (renormalised), not yet top-p
    cumulative: tuple[float, ...]
    kept: tuple[bool, ...]            # survives top-k and top-p
    top_p: float | None
    labels: tuple[str, ...] = ()      # token labels of ``ids`` (see :func:`nucleus`)
    pieces: tuple[bytes, ...] = ()    # their bytes
    context: bytes = b""

    def rows(self) -> list[dict[str, object]]:
        return [{"token": lab, "id": i, "probability": p, "cumulative": c, "kept": k}
                for lab, i, p, c, k in zip(self.labels, self.ids, self.probs, self.cumulative, self.kept)]


def nucleus_curve(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, show: int = 100) -> NucleusCurve:
    """The first ``show`` tokens of the cumulative-probability curve that top-p cuts."""
    before_p = adjusted_probs(logits, temperature, top_k, None)       # (V,)
    final = adjusted_probs(logits, temperature, top_k, top_p)         # (V,)
    probs, ids = torch.topk(before_p, min(show, before_p.numel()))
    cumulative = torch.cumsum(probs, 0)
    return NucleusCurve(tuple(int(i) for i in ids), tuple(float(p) for p in probs),
                        tuple(float(c) for c in cumulative), tuple(bool(final[i] > 0) for i in ids),
                        top_p)


def _tokens_of(model: Any, trace: Any, ids: tuple[int, ...]) -> dict[str, Any]:
    """Labels, bytes and the unfinished character before them, for results about the next token."""
    pieces = token_pieces(model, ids)
    return {"labels": tuple(legible(b) for b in pieces), "bytes": pieces,
            "context": pending(b"".join(trace.token_bytes[-4:]))}


@per_trace
def next_token(model: Any, trace: Any, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, show: int = 20) -> Distribution:
    """:func:`next_token_distribution` after ``trace`` (of ``model``), with the tokens' labels and bytes.
    Remembered per trace and settings (a slider moved back, the untrained model beside it)."""
    dist = next_token_distribution(trace.next_token_logits, temperature, top_k, top_p, show)
    found = _tokens_of(model, trace, dist.top_ids)
    return replace(dist, top_labels=found["labels"], top_bytes=found["bytes"], context=found["context"])


@per_trace
def nucleus(model: Any, trace: Any, temperature: float = 1.0, top_k: int | None = None,
            top_p: float | None = None, show: int = 100) -> "NucleusCurve":
    """:func:`nucleus_curve` after ``trace`` (of ``model``), with the tokens' labels and bytes (remembered)."""
    curve = nucleus_curve(trace.next_token_logits, temperature, top_k, top_p, show)
    found = _tokens_of(model, trace, curve.ids)
    return replace(curve, labels=found["labels"], pieces=found["bytes"], context=found["context"])


@dataclass(frozen=True)
class TrainedVsUntrained:
    """The same prompt's next-token distribution from the trained model and from an untrained one."""

    trained: Distribution
    untrained: Distribution
    same_vocabulary: bool

    def rows(self) -> dict[str, object]:
        return {side: [[lab, p] for lab, p in zip(d.top_labels, d.top_probs)]
                for side, d in (("trained", self.trained), ("untrained", self.untrained))}
