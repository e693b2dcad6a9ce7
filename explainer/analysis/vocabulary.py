"""Token vectors: labels, word lookup, nearest neighbours, word pairs and analogies.

Everything here works on the model's input embedding matrix ``E`` (V, d): row ``i`` is
the vector the model starts from when it reads token id ``i``. Results are frozen
dataclasses of plain numbers and strings; figures live in ``explainer/figures``. The 2-D
map of the whole vocabulary lives in :mod:`explainer.analysis.vocab_map`.

Token labels are the project's one rule (:mod:`explainer.tokens`): the vocabulary's labels
come from :func:`explainer.tokens.vocabulary_labels`, the prompt's from the trace.
"""
from __future__ import annotations

import threading
import unicodedata
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from explainer.devices import host
from explainer.tokens import legible, token_bytes
from explainer.trace import Trace


# ------------------------------------------------------------------------ word lookup
@dataclass(frozen=True)
class WordTokens:
    """How a user's word maps to token ids. ``split``: several pieces, vector = their mean."""

    word: str                  # what the user typed (stripped)
    text: str                  # the exact text tokenized: " word" (mid-sentence form) or "word"
    ids: tuple[int, ...]
    pieces: tuple[str, ...]    # legible labels of ``ids`` (see explainer.tokens)

    @property
    def split(self) -> bool:
        return len(self.ids) > 1


def _written_without_spaces(word: str) -> bool:
    """Chinese, Japanese…: wide characters follow each other with no space in between."""
    return unicodedata.east_asian_width(word[0]) in ("W", "F")


def lookup_word(tokenizer: Any, word: str) -> WordTokens:
    """Prefer one token for " word", then one for "word", else all pieces of " word".

    Words in scripts written without spaces (猫, 汉堡) try "word" first, as they appear
    mid-sentence. Raises ValueError for an empty word. Tokenizers are not thread-safe:
    call under the model's lock.
    """
    word = word.strip()
    if not word:
        raise ValueError("empty word")
    candidates = []
    forms = (word, " " + word) if _written_without_spaces(word) else (" " + word, word)
    for text in forms:
        ids = tuple(int(i) for i in tokenizer.encode(text, add_special_tokens=False))
        candidates.append((text, ids))
        if len(ids) == 1:
            break
    text, ids = next(((t, i) for t, i in candidates if len(i) == 1), candidates[0])
    if not ids:
        raise ValueError(f"no tokens for {word!r}")
    return WordTokens(word, text, ids, tuple(legible(b) for b in token_bytes(tokenizer, ids)))


Query = int | WordTokens | torch.Tensor


_row_norms: dict[int, tuple["weakref.ref[torch.Tensor]", torch.Tensor]] = {}
_row_norms_lock = threading.Lock()


def _norms(embedding: torch.Tensor) -> torch.Tensor:
    """|row| of every token vector (V,), computed once per matrix: a 262,144-row vocabulary is
    then searched with one matrix-vector product instead of a normalised copy (670 MB).
    (Keyed by identity: tensors compare element-wise, so they cannot be dictionary keys.)"""
    with _row_norms_lock:
        ref, found = _row_norms.get(id(embedding), (None, None))
    if ref is None or ref() is not embedding:
        found = embedding.detach().float().norm(dim=1).clamp_min(1e-12)   # (V,)
        with _row_norms_lock:
            for key in [k for k, (r, _) in _row_norms.items() if r() is None]:
                del _row_norms[key]
            _row_norms[id(embedding)] = (weakref.ref(embedding), found)
    return found


def _vector(embedding: torch.Tensor, query: Query) -> torch.Tensor:
    """The (d,) vector for a token id, a looked-up word (mean of pieces), or a raw vector."""
    if isinstance(query, WordTokens):
        return embedding.detach().float()[list(query.ids)].mean(dim=0)
    if isinstance(query, torch.Tensor):
        return query.detach().float().reshape(-1)
    return embedding.detach().float()[int(query)]


def _query_ids(query: Query) -> tuple[int, ...]:
    if isinstance(query, WordTokens):
        return query.ids
    return () if isinstance(query, torch.Tensor) else (int(query),)


def _query_name(query: Query, labels: Sequence[str]) -> str:
    if isinstance(query, WordTokens):
        return query.word
    return "<vector>" if isinstance(query, torch.Tensor) else labels[int(query)]


def _cosines(embedding: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every token vector with ``vector``: (V,)."""
    v = vector / vector.norm().clamp_min(1e-12)
    return (embedding.detach().float() @ v) / _norms(embedding)  # (V,)


# ------------------------------------------------------------------ nearest neighbours
@dataclass(frozen=True)
class Neighbours:
    query: str
    ids: tuple[int, ...]
    labels: tuple[str, ...]
    similarities: tuple[float, ...]   # cosine, descending

    def rows(self) -> list[dict[str, object]]:
        return [{"id": i, "token": lab, "cosine": s} for i, lab, s in zip(self.ids, self.labels, self.similarities)]


def _top(sims: torch.Tensor, labels: Sequence[str], query: str, k: int,
         exclude: Sequence[int]) -> Neighbours:
    sims = sims.clone()
    if len(exclude):
        sims[torch.as_tensor(list(exclude), dtype=torch.long)] = -float("inf")
    k = max(0, min(k, int(torch.isfinite(sims).sum())))
    v, i = sims.topk(k)
    ids = tuple(int(x) for x in i)
    return Neighbours(query, ids, tuple(labels[x] for x in ids), tuple(float(x) for x in v))


def nearest_neighbours(embedding: torch.Tensor, token_labels: Sequence[str],
                       vector_or_id: Query, k: int = 10, exclude: Sequence[int] = (),
                       exclude_query: bool = True) -> Neighbours:
    """The ``k`` tokens whose vectors have the highest cosine similarity to the query.

    ``embedding`` (V, d). The query is a token id, a :class:`WordTokens` or a (d,) vector;
    with ``exclude_query`` its own ids are left out (a token is always its own nearest).
    """
    sims = _cosines(embedding, _vector(embedding, vector_or_id))
    skip = tuple(exclude) + (_query_ids(vector_or_id) if exclude_query else ())
    return _top(sims, token_labels, _query_name(vector_or_id, token_labels), k, skip)


# ----------------------------------------------------------------------- word pairs
@dataclass(frozen=True)
class PairSimilarity:
    first: WordTokens
    second: WordTokens
    similarity: float                 # cosine of the two (mean-of-pieces) vectors


@dataclass(frozen=True)
class PairSimilarities:
    """The word pairs a user typed, in order; iterates (and indexes) like a tuple of pairs."""

    pairs: tuple[PairSimilarity, ...]

    def __iter__(self):
        return iter(self.pairs)

    def __getitem__(self, i: int) -> PairSimilarity:
        return self.pairs[i]

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def any_split(self) -> bool:
        """Whether some word was split into several tokens (its vector is their mean)."""
        return any(p.first.split or p.second.split for p in self.pairs)

    def rows(self) -> list[dict[str, object]]:
        return [{"first": p.first.word, "second": p.second.word, "first_pieces": " ".join(p.first.pieces),
                 "second_pieces": " ".join(p.second.pieces), "cosine": p.similarity} for p in self.pairs]


def pair_similarity(embedding: torch.Tensor,
                    pairs: Sequence[tuple[WordTokens, WordTokens]]) -> PairSimilarities:
    """Cosine similarity of each pair of looked-up words, e.g. cat/dog vs cat/hamburger."""
    out = []
    for a, b in pairs:
        va, vb = _vector(embedding, a), _vector(embedding, b)
        cos = torch.nn.functional.cosine_similarity(va, vb, dim=0, eps=1e-12)
        out.append(PairSimilarity(a, b, float(cos)))
    return PairSimilarities(tuple(out))


# ------------------------------------------------------------------------- analogies
@dataclass(frozen=True)
class Analogy:
    """``a − b + c`` (king − man + woman), ranked by cosine to the unit-vector sum."""

    a: str
    b: str
    c: str
    input_ids: tuple[int, ...]
    excluded: Neighbours              # the usual report: a, b, c left out
    included: Neighbours              # the honest one: a, b, c allowed (often win)
    expected: str | None = None
    expected_ids: tuple[int, ...] = ()
    expected_similarity: float | None = None
    expected_rank_included: int | None = None   # 1 = top; None without an expected word
    expected_rank_excluded: int | None = None   # None also when expected is an input

    def rows(self) -> dict[str, object]:
        return {"query": self.excluded.query, "excluded": list(self.excluded.labels),
                "included": list(self.included.labels), "expected": self.expected,
                "rank_excluded": self.expected_rank_excluded, "rank_included": self.expected_rank_included}


def _rank(sims: torch.Tensor, value: float, exclude: Sequence[int]) -> int:
    s = sims.clone()
    if len(exclude):
        s[torch.as_tensor(list(exclude), dtype=torch.long)] = -float("inf")
    return 1 + int((s > value).sum())


def analogy(embedding: torch.Tensor, labels: Sequence[str], a: int | WordTokens,
            b: int | WordTokens, c: int | WordTokens, k: int = 10,
            expected: int | WordTokens | None = None) -> Analogy:
    """Which tokens lie closest to ``a − b + c``? (3CosAdd on unit vectors.)"""

    def u(q: Query) -> torch.Tensor:
        v = _vector(embedding, q)
        return v / v.norm().clamp_min(1e-12)

    target = u(a) - u(b) + u(c)                                   # (d,)
    sims = _cosines(embedding, target)                            # (V,)
    inputs = tuple(dict.fromkeys(_query_ids(a) + _query_ids(b) + _query_ids(c)))
    names = [_query_name(q, labels) for q in (a, b, c)]
    title = f"{names[0]} − {names[1]} + {names[2]}"
    result = dict(a=names[0], b=names[1], c=names[2], input_ids=inputs,
                  excluded=_top(sims, labels, title, k, inputs),
                  included=_top(sims, labels, title, k, ()))
    if expected is not None:
        e_ids = _query_ids(expected)
        e_sim = float(sims[e_ids[0]]) if len(e_ids) == 1 else float(
            torch.dot(u(expected), target / target.norm().clamp_min(1e-12)))
        result.update(expected=_query_name(expected, labels), expected_ids=e_ids,
                      expected_similarity=e_sim,
                      expected_rank_included=_rank(sims, e_sim, ()),
                      expected_rank_excluded=None if set(e_ids) & set(inputs)
                      else _rank(sims, e_sim, inputs))
    return Analogy(**result)


# ------------------------------------------------------------------ the prompt's vectors
@dataclass(frozen=True)
class PromptVectors:
    """A window of the prompt's token vectors: rows ``start … start+len-1`` of the trace."""

    start: int
    n_tokens: int                     # in the whole prompt
    ids: tuple[int, ...]
    labels: tuple[str, ...]
    vectors: np.ndarray               # (W, d) float32, read-only

    def rows(self) -> list[dict[object, object]]:
        """One row per token ("position: label"), one column per dimension."""
        return [{"token": f"{self.start + i}: {lab}", **dict(enumerate(row.tolist()))}
                for i, (lab, row) in enumerate(zip(self.labels, self.vectors))]


def prompt_vectors(trace: Trace, focus: int = -1, size: int = 40) -> PromptVectors:
    """At most ``size`` consecutive token vectors around position ``focus`` (-1: the last).

    The window is centred on ``focus`` and shifted to stay inside the prompt, so the
    default shows the last ``size`` tokens.
    """
    n = trace.n_tokens
    focus = n - 1 if focus < 0 else min(focus, n - 1)
    size = max(1, min(size, n))
    start = min(max(0, focus - size // 2), n - size)
    vectors = host(trace.embeddings[start:start + size]).numpy().astype(np.float32)  # (W, d)
    vectors.setflags(write=False)
    ids = tuple(int(i) for i in trace.token_ids[start:start + size])
    return PromptVectors(start, n, ids, tuple(trace.tokens[start:start + size]), vectors)
