"""The next-token distribution and how sampling settings reshape it."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


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


def softmax_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / T) in float64 for exact sums; T → 0 approaches greedy (one-hot)."""
    if temperature <= 0:
        raise ValueError("Temperature must be above 0.")
    return torch.softmax(logits.double() / temperature, dim=-1)


def adjusted_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> torch.Tensor:
    """The sampling distribution: temperature, then keep the top-k, then the top-p nucleus, renormalised."""
    probs = softmax_probs(logits, temperature)                    # (V,)
    keep = torch.ones_like(probs, dtype=torch.bool)
    order = torch.argsort(probs, descending=True)
    if top_k is not None and top_k > 0:
        keep[order[top_k:]] = False
    if top_p is not None and 0 < top_p < 1:
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


def token_labels(model, ids) -> tuple[str, ...]:
    """A legible label per token id of ``model`` (a LoadedModel); split characters show as <0xNN>."""
    from explainer.tokens import legible, token_bytes

    with model.lock:                      # the shared tokenizer is not thread-safe
        pieces = token_bytes(model.tokenizer, [int(i) for i in ids])
    return tuple(legible(b) for b in pieces)
