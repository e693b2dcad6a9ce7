"""The bytes and legible labels of a trace's tokens, made when first asked for, once per (tokenizer, ids).

A plain forward pass does not turn ids into text; a trace does not either while it runs. The first
page that shows a token asks :class:`TokenText`, which makes them with :func:`explainer.tokens.token_pieces`
and :func:`explainer.tokens.legible` (the one rule for showing a token) and remembers them per tokenizer,
so the same text traced again (with heads switched off, by another session) finds them made.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Sequence

from explainer.tokens import legible, token_pieces

_TEXTS_KEPT = 500_000             # tokens remembered per tokenizer, in the most recent runs (~75 MB at most)
_texts: "weakref.WeakKeyDictionary[Any, OrderedDict[tuple[int, ...], tuple[tuple[bytes, ...], tuple[str, ...]]]]" = \
    weakref.WeakKeyDictionary()
_texts_lock = threading.Lock()


class TokenText:
    """The bytes and legible labels of one run of token ids, made when first asked for.

    A trace does not make them during its forward pass (a plain forward does not either): the
    first page that shows a token does, once per (tokenizer, ids) — the same text traced again,
    or with heads switched off, finds them made. ``model`` is a LoadedModel (its tokenizer and
    lock); a trace read from a file passes its ``pieces`` and ``labels`` instead.
    """

    def __init__(self, ids: Sequence[int], model: Any = None, pieces: Sequence[bytes] | None = None,
                 labels: Sequence[str] | None = None) -> None:
        if pieces is None and model is None:
            raise ValueError("TokenText needs the model that made the ids, or their bytes.")
        self._ids = tuple(int(i) for i in ids) if pieces is None else ()
        self._model = model if pieces is None else None
        self._made = None if pieces is None else (tuple(pieces), tuple(labels) if labels is not None
                                                  else tuple(legible(p) for p in pieces))
        self._lock = threading.Lock()

    @property
    def pieces(self) -> tuple[bytes, ...]:
        """The raw bytes of each token."""
        return self._get()[0]

    @property
    def labels(self) -> tuple[str, ...]:
        """The legible label of each token (:func:`legible`)."""
        return self._get()[1]

    def _get(self) -> tuple[tuple[bytes, ...], tuple[str, ...]]:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = _made_once(self._model, self._ids)
                    self._model = None
        return self._made


def _made_once(model: Any, ids: tuple[int, ...]) -> tuple[tuple[bytes, ...], tuple[str, ...]]:
    """Bytes and labels of ``ids`` for ``model``'s tokenizer, remembered per (tokenizer, ids)."""
    tokenizer = model.tokenizer
    with _texts_lock:
        known = _texts.setdefault(tokenizer, OrderedDict())
        found = known.get(ids)
        if found is not None:
            known.move_to_end(ids)
            return found
    pieces = token_pieces(model, ids)
    made = (pieces, tuple(legible(p) for p in pieces))
    with _texts_lock:
        known[ids] = made
        total = sum(len(k) for k in known)
        while len(known) > 1 and total > _TEXTS_KEPT:
            total -= len(known.popitem(last=False)[0])
    return made
