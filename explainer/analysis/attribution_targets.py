"""What a user types as "the token to explain" → one token id, or a friendly refusal.

The rules, in order (see :func:`resolve_target`):

1. A whole number (``int`` or a NumPy integer, not ``bool``) is a token id; so is text of
   the form ``"#11452"`` (a ``#`` then ASCII digits). Plain digits like ``"2"`` are token
   *text*: numbers are tokens too.
2. Other text is a token's exact text: the token whose bytes are exactly what was typed.
3. If the exact text is not one token, the other spacing is tried: a leading space added
   (``"Berlin"`` → ``" Berlin"``), or, when the text starts with one space, that space
   removed. Words in the middle of a sentence usually carry their space, so this is what
   people mean when they type a bare word.
4. Anything else (empty text, several tokens) raises :class:`TargetError` with a message
   that says what happened; for several tokens it names the pieces and offers the first
   one as ``suggestion``.
"""
from __future__ import annotations

from numbers import Integral
from typing import Any

from explainer.models import LoadedModel
from explainer.tokens import legible, token_bytes


class TargetError(ValueError):
    """A typed target that is not one token. ``suggestion``: a token id to offer instead, if any;
    ``pieces``: the legible tokens the text splits into; ``reason``: what went wrong, for a page
    to word in its language ("empty", "range", "no_token", "not_token", "pieces", "same")."""

    def __init__(self, message: str, suggestion: int | None = None, pieces: tuple[str, ...] = (),
                 reason: str = "") -> None:
        super().__init__(message)
        self.suggestion = suggestion
        self.pieces = pieces
        self.reason = reason


def resolve_target(model: LoadedModel, typed: Any) -> int:
    """The token id meant by ``typed`` (an id, ``"#id"``, or a token's text; rules in the module doc)."""
    if isinstance(typed, bool) or not isinstance(typed, (Integral, str)):
        raise TypeError(f"A target is a token's text (str) or its id (int), not {type(typed).__name__}.")
    if isinstance(typed, Integral):
        return checked_id(model, int(typed))
    if typed.startswith("#") and typed[1:].isascii() and typed[1:].isdigit():
        return checked_id(model, int(typed[1:]))
    if typed == "":
        raise TargetError("The target is empty. Type a word (one token), or pick one of the top predictions.",
                          reason="empty")
    for spelling in spellings(typed):
        found = single_token(model, spelling)
        if found is not None:
            return found
    raise _not_one_token(model, typed)


def spellings(typed: str) -> tuple[str, ...]:
    """``typed`` itself, then its other spacing (a leading space added, or one removed)."""
    if typed.startswith(" "):
        other = typed[1:]
        return (typed, other) if other else (typed,)
    return typed, " " + typed


def single_token(model: LoadedModel, text: str) -> int | None:
    """The id of the token whose bytes are exactly ``text``, or None when ``text`` is not one token."""
    with model.tokenizer_lock:                          # the shared tokenizer is not thread-safe
        ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            return None
        piece = token_bytes(model.tokenizer, ids)[0]
    return int(ids[0]) if piece == text.encode("utf-8") and 0 <= ids[0] < model.vocab_size else None


def other_spelling(model: LoadedModel, token_id: int) -> int | None:
    """The same word with the other spacing, when that is one token too (``'Berlin'`` ↔ ``' Berlin'``).

    Lets a page say "you asked for 'Berlin' without a space; ' Berlin' is a token too".
    """
    with model.tokenizer_lock:
        text = token_bytes(model.tokenizer, [checked_id(model, token_id)])[0]
    try:
        typed = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    others = [s for s in spellings(typed)[1:] if s.strip()]
    return single_token(model, others[0]) if others else None


def checked_id(model: LoadedModel, token_id: int) -> int:
    """``token_id`` if this model has it, else a :class:`TargetError` that gives the range."""
    if not 0 <= token_id < model.vocab_size:
        raise TargetError(f"There is no token with id {token_id}: this model's ids run from 0 to "
                          f"{model.vocab_size - 1:,}.", reason="range")
    return token_id


def _not_one_token(model: LoadedModel, typed: str) -> TargetError:
    with model.tokenizer_lock:
        ids = model.tokenizer(typed, add_special_tokens=False)["input_ids"]
        labels = tuple(legible(p) for p in token_bytes(model.tokenizer, ids))
    if not ids:
        return TargetError(f"'{typed}' gives no token at all. Type a word, or pick one of the top predictions.",
                           reason="no_token")
    if len(ids) == 1:                         # one token, but not this text (e.g. the unknown-token id)
        return TargetError(f"'{typed}' is not a token of this model (it reads as '{labels[0]}'). "
                           "Pick one of the top predictions.", None, labels, "not_token")
    split = " + ".join(f"'{label}'" for label in labels)
    return TargetError(f"'{typed}' is {len(ids)} tokens: {split}; the model predicts one token at a time. "
                       f"Pick its first token '{labels[0]}'?", int(ids[0]), labels, "pieces")
