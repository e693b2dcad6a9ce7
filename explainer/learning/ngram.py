"""Counting baselines: unigram, bigram and trigram models of the same token stream.

Before neural networks, a language model was a table of counts: P(w | previous n-1 words)
= count(previous words, w) / count(previous words). It is exact on what it has seen and
helpless on what it has not; ``unseen_continuations`` shows where the tiny GPT does better.
Tokens are strings (the tokenizer's pieces) counted over one concatenated stream.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

Context = tuple[str, ...]


@dataclass(frozen=True)
class NGramModel:
    """Counts of an order-n model: context (n-1 tokens) -> next token -> count."""

    order: int
    counts: dict[Context, dict[str, int]]
    vocab: tuple[str, ...]  # every token the model may predict (for add-k smoothing)

    def context_count(self, context: Context) -> int:
        return sum(self.counts.get(context, {}).values())

    def count(self, context: Context, token: str) -> int:
        return self.counts.get(context, {}).get(token, 0)

    def context_of(self, tokens: list[str] | tuple[str, ...]) -> Context:
        """The last n-1 tokens of a sequence (empty for a unigram model)."""
        return tuple(tokens[len(tokens) - self.order + 1:]) if self.order > 1 else ()

    def prob(self, context: Context, token: str, k: float = 0.0) -> float:
        """P(token | context) = (count + k) / (context count + k * |V|); k=0 is maximum likelihood.

        With k=0 an unseen context gives 0.0 (the count model has nothing to say).
        """
        total = self.context_count(context)
        denom = total + k * len(self.vocab)
        return (self.count(context, token) + k) / denom if denom > 0 else 0.0

    def next_probs(self, context: Context, top: int = 5, k: float = 0.0) -> tuple[tuple[str, float], ...]:
        """Most likely next tokens after a context (empty if the context was never seen and k=0)."""
        row = self.counts.get(context, {})
        if not row and k == 0:
            return ()
        candidates = self.vocab if k > 0 else tuple(row)
        ranked = sorted(candidates, key=lambda t: (-row.get(t, 0), t))[:top]
        return tuple((t, self.prob(context, t, k)) for t in ranked)

    def table(self, rows: int = 10, cols: int = 5) -> tuple[tuple[Context, int, tuple[tuple[str, int], ...]], ...]:
        """Top rows of the count table: (context, context count, top (token, count) pairs)."""
        ranked = sorted(self.counts, key=lambda c: (-self.context_count(c), c))[:rows]
        return tuple((c, self.context_count(c),
                      tuple(sorted(self.counts[c].items(), key=lambda kv: (-kv[1], kv[0]))[:cols]))
                     for c in ranked)


def count_ngrams(tokens: list[str], order: int, vocab: tuple[str, ...] | None = None) -> NGramModel:
    """Count every n-gram in a token stream (positions order-1 .. end are predicted)."""
    if order < 1:
        raise ValueError("order must be >= 1")
    counts: dict[Context, Counter[str]] = defaultdict(Counter)
    for i in range(order - 1, len(tokens)):
        counts[tuple(tokens[i - order + 1:i])][tokens[i]] += 1
    vocab = vocab if vocab is not None else tuple(sorted(set(tokens)))
    return NGramModel(order, {c: dict(row) for c, row in counts.items()}, vocab)


@dataclass(frozen=True)
class HeldoutScore:
    order: int
    cross_entropy: float  # nats per token, add-k smoothed
    perplexity: float
    n_tokens: int


def cross_entropy(model: NGramModel, tokens: list[str], k: float = 0.1, start: int = 2) -> HeldoutScore:
    """Mean -log P(token | context) over tokens[start:], with add-k smoothing (k > 0)."""
    if k <= 0:
        raise ValueError("k must be > 0: unseen n-grams would have probability 0 (infinite loss)")
    start = max(start, model.order - 1)
    nll = [-math.log(model.prob(model.context_of(tokens[:i]), tokens[i], k)) for i in range(start, len(tokens))]
    ce = sum(nll) / max(len(nll), 1)
    return HeldoutScore(model.order, ce, math.exp(ce), len(nll))


def build_ngrams(tokens: list[str], vocab: tuple[str, ...] | None = None,
                 orders: tuple[int, ...] = (1, 2, 3)) -> dict[int, NGramModel]:
    """Unigram, bigram and trigram models of the same stream."""
    return {n: count_ngrams(tokens, n, vocab) for n in orders}


@dataclass(frozen=True)
class NGramReport:
    """Unigram/bigram/trigram models of a corpus, their held-out scores and probe predictions."""

    models: dict[int, NGramModel]
    heldout: dict[int, HeldoutScore]  # add-k smoothed, scored on the same held-out positions
    probes: dict[str, dict[int, tuple[tuple[str, float], ...]]]  # prompt -> order -> ML top tokens
    k: float


def ngram_report(tokenizer: PreTrainedTokenizerFast, train_lines: tuple[str, ...], heldout_lines: tuple[str, ...],
                 probes: tuple[str, ...], k: float = 0.1, top: int = 5) -> NGramReport:
    """Count the training sentences and score the held-out ones (same tokens as the tiny GPT)."""
    vocab = tuple(t for t in tokenizer.get_vocab() if t not in tokenizer.all_special_tokens)
    models = build_ngrams(stream_tokens(tokenizer, train_lines), vocab)
    held = stream_tokens(tokenizer, heldout_lines)
    scores = {n: cross_entropy(m, held, k=k, start=max(models) - 1) for n, m in models.items()}
    predictions = {}
    for prompt in probes:
        tokens = stream_tokens(tokenizer, [prompt])
        predictions[prompt] = {n: m.next_probs(m.context_of(tokens), top) for n, m in models.items()}
    return NGramReport(models, scores, predictions, k)


def stream_tokens(tokenizer: PreTrainedTokenizerFast, lines: tuple[str, ...] | list[str]) -> list[str]:
    """Sentences tokenized into one stream of token strings (same stream the tiny GPT sees)."""
    out: list[str] = []
    for line in lines:
        out.extend(tokenizer.convert_ids_to_tokens(tokenizer(line, add_special_tokens=False)["input_ids"]))
    return out


@dataclass(frozen=True)
class UnseenContinuation:
    """A held-out n-gram the counts never saw, and what the neural model thinks of it."""

    context: Context
    token: str
    kind: str  # "unseen context" (row missing) or "unseen pair" (row exists, cell is 0)
    ngram_prob: float  # maximum likelihood: always 0.0 here
    neural_prob: float  # tiny GPT's P(token | preceding held-out tokens)


@torch.no_grad()
def _neural_probs(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, tokens: list[str]) -> list[float | None]:
    """P(tokens[i] | tokens[i-w:i]) from the GPT in windows of n_positions (None at window starts)."""
    ids = torch.tensor(tokenizer.convert_tokens_to_ids(tokens), dtype=torch.long)  # (N,)
    W = model.config.n_positions
    model.eval()
    out: list[float | None] = [None] * len(tokens)
    for start in range(0, len(tokens), W // 2):  # half-overlapping windows: every token gets context
        window = ids[start:start + W][None, :]  # (1, T)
        probs = torch.softmax(model(input_ids=window).logits[0, :-1], dim=-1)  # (T-1, V)
        picked = probs.gather(1, window[0, 1:, None])[:, 0]  # (T-1,)
        first = 0 if start == 0 else W // 2 - 1
        for j in range(first, picked.numel()):
            out[start + j + 1] = float(picked[j])
    return out


def unseen_continuations(ngram: NGramModel, heldout_tokens: list[str], model: GPT2LMHeadModel,
                         tokenizer: PreTrainedTokenizerFast, limit: int = 20) -> tuple[UnseenContinuation, ...]:
    """Held-out (context, token) pairs with zero count, each once, with the GPT's probability.

    Sorted by the GPT's probability, highest first: where counting says 0 and the network,
    having learned from similar sentences, says "likely".
    """
    neural = _neural_probs(model, tokenizer, heldout_tokens)
    seen: set[tuple[Context, str]] = set()
    found: list[UnseenContinuation] = []
    for i in range(max(ngram.order - 1, 1), len(heldout_tokens)):
        ctx, tok = ngram.context_of(heldout_tokens[:i]), heldout_tokens[i]
        if ngram.count(ctx, tok) or (ctx, tok) in seen or neural[i] is None:
            continue
        seen.add((ctx, tok))
        kind = "unseen context" if ctx not in ngram.counts else "unseen pair"
        found.append(UnseenContinuation(ctx, tok, kind, 0.0, float(neural[i])))
    return tuple(sorted(found, key=lambda u: -u.neural_prob)[:limit])
