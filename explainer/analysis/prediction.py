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
