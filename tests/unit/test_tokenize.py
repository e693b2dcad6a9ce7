"""A text in: what the model is given for it — non-text and empty texts refused, a long text cut to
its first tokens (reading only as much of it as they need), each model's context as the bound, and
token labels that show bytes and control characters legibly."""
from __future__ import annotations

import dataclasses

import pytest

import explainer
from explainer import tracing


@pytest.mark.parametrize("bad", ["", "   ", "\n\t  "])
def test_empty_text_is_refused(tiny_gpt2, bad):
    with pytest.raises(ValueError, match="empty"):
        explainer.trace(tiny_gpt2, bad)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["list"]])
def test_non_text_is_refused(tiny_gpt2, bad):
    with pytest.raises(TypeError):
        explainer.trace(tiny_gpt2, bad)


def test_long_text_is_truncated_and_bounded(tiny_gpt2):
    article = "Words upon words in a very long article. " * 3000      # ~120,000 characters
    t = explainer.trace(tiny_gpt2, article, max_tokens=50)
    assert t.truncated and t.n_tokens == 50
    assert t.token_ids.tolist() == tiny_gpt2.tokenizer(article[:4096])["input_ids"][:50]
    exact = explainer.trace(tiny_gpt2, "one two three", max_tokens=3)
    assert not exact.truncated and exact.n_tokens == 3


class _CharsRead:
    """A tokenizer that notes how many characters it was given each time."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.lengths = tokenizer, []

    def __call__(self, text, **kwargs):
        self.lengths.append(len(text))
        return self.tokenizer(text, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


@pytest.mark.parametrize("text", ["Words upon words in a very long article. " * 3000,
                                  "https://example.com/" + "x1Y2z3" * 2000, "= " * 9000, "日本语言" * 3000])
def test_a_long_text_is_read_only_as_far_as_its_first_tokens_need(tiny_gpt2, text):
    spy = _CharsRead(tiny_gpt2.tokenizer)
    model = dataclasses.replace(tiny_gpt2, tokenizer=spy)
    for wanted in (1, 50, 100):                                  # the tiny model reads 128 at most
        spy.lengths.clear()
        ids, truncated = tracing.tokenize(model, text, wanted)
        assert truncated and ids == tiny_gpt2.tokenizer(text)["input_ids"][:wanted]
        assert spy.lengths[0] == max(256, 8 * wanted) and spy.lengths[-1] <= max(4096, 64 * wanted)
    assert tracing.tokenize(model, "one two three", 50) == (tiny_gpt2.tokenizer("one two three")["input_ids"], False)


def test_max_tokens_never_exceeds_the_context(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, "x " * 500, max_tokens=10_000)
    assert t.n_tokens == tiny_gpt2.context_length == 128


def test_byte_pieces_are_legible(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, "猫 and 🐱 and 👩‍👩‍👧")
    assert all("\ufffd" not in tok for tok in t.tokens)
    assert b"".join(t.token_bytes).decode("utf-8") == "猫 and 🐱 and 👩‍👩‍👧"


def test_control_characters_are_visible(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, "a\nb\x00c")
    joined = "".join(t.tokens)
    assert "\n" not in joined and "\x00" not in joined and "↵" in joined and "<0x00>" in joined
