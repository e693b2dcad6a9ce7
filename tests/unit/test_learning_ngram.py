"""n-gram baselines: exact counts and probabilities on a handmade stream."""
from __future__ import annotations

import math

import pytest

from explainer.learning import build_ngrams, build_tokenizer, build_tiny_gpt, count_ngrams, cross_entropy
from explainer.learning import stream_tokens, unseen_continuations

# "a b a b a c": unigrams a3 b2 c1; bigrams a->b 2, a->c 1, b->a 2; trigrams (a,b)->a 2, (b,a)->b 1, (b,a)->c 1
TOKENS = "a b a b a c".split()


def test_unigram_counts_and_probs() -> None:
    uni = count_ngrams(TOKENS, 1)
    assert uni.counts == {(): {"a": 3, "b": 2, "c": 1}}
    assert uni.prob((), "a") == pytest.approx(3 / 6)
    assert uni.next_probs((), top=2) == (("a", 0.5), ("b", pytest.approx(2 / 6)))


def test_bigram_and_trigram_counts_exact() -> None:
    models = build_ngrams(TOKENS)
    assert models[2].counts == {("a",): {"b": 2, "c": 1}, ("b",): {"a": 2}}
    assert models[3].counts == {("a", "b"): {"a": 2}, ("b", "a"): {"b": 1, "c": 1}}
    assert models[2].prob(("a",), "b") == pytest.approx(2 / 3)
    assert models[3].prob(("b", "a"), "c") == pytest.approx(1 / 2)
    assert models[3].prob(("c", "c"), "a") == 0.0  # unseen context: ML has nothing to say
    assert models[3].next_probs(("c", "c")) == ()
    assert models[3].context_of(["x", "b", "a"]) == ("b", "a")


def test_add_k_smoothing_and_cross_entropy_by_hand() -> None:
    bi = count_ngrams(TOKENS, 2)  # vocab a, b, c
    assert bi.prob(("a",), "a", k=1.0) == pytest.approx((0 + 1) / (3 + 3))
    assert bi.prob(("c",), "a", k=1.0) == pytest.approx(1 / 3)  # unseen context -> uniform
    held = "b a c c".split()  # scored from index 2: P(c|a), P(c|c)
    score = cross_entropy(bi, held, k=1.0, start=2)
    expected = -(math.log(2 / 6) + math.log(1 / 3)) / 2
    assert score.n_tokens == 2
    assert score.cross_entropy == pytest.approx(expected)
    assert score.perplexity == pytest.approx(math.exp(expected))
    with pytest.raises(ValueError):
        cross_entropy(bi, held, k=0.0)


def test_table_rows_sorted_by_count() -> None:
    rows = count_ngrams(TOKENS, 2).table(rows=1, cols=1)
    assert rows == ((("a",), 3, (("b", 2),)),)


def test_unseen_continuations_reports_zero_count_pairs() -> None:
    tok = build_tokenizer("en", text="the apple is red . the sky is blue .")
    train = stream_tokens(tok, ["the apple is red .", "the sky is blue ."])
    held = stream_tokens(tok, ["the sky is red .", "red apple ."])
    model = build_tiny_gpt(len(tok))
    found = unseen_continuations(count_ngrams(train, 2), held, model, tok)
    assert {(u.context, u.token) for u in found} == {((".",), "red"), (("red",), "apple"), (("apple",), ".")}
    assert all(u.kind == "unseen pair" and u.ngram_prob == 0.0 and 0 < u.neural_prob < 1 for u in found)
    assert [u.neural_prob for u in found] == sorted((u.neural_prob for u in found), reverse=True)
    tri = unseen_continuations(count_ngrams(train, 3), held, model, tok)
    kinds = {(u.context, u.token): u.kind for u in tri}
    assert kinds[(("red", "apple"), ".")] == "unseen context"
    assert (("is", "red"), ".") not in kinds  # seen in training: counting handles it
