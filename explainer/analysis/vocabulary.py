"""Token vectors: the vocabulary map, word lookup, neighbours, word pairs and analogies.

Everything here works on the model's input embedding matrix ``E`` (V, d): row ``i`` is
the vector the model starts from when it reads token id ``i``. Results are frozen
dataclasses of plain numbers and strings; figures live in ``explainer/figures``.

Token labels (see :func:`token_labels`) follow one rule set everywhere:
a space is shown as ``␣`` (so `` cat`` is ``␣cat``), newline ``↵``, tab ``⇥``,
carriage return ``␍``; bytes that are not a whole UTF-8 character, other control
characters and U+FFFD are shown as bytes ``<0xE7>``; special tokens keep their own text;
an empty label is ``<empty>``.
"""
from __future__ import annotations

import os
import re
import threading
import time
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from explainer.paths import cache_dir

Progress = Callable[[float, str], None]

FORMAT_VERSION = 1
PCA_DIMS = 50           # UMAP runs on the top principal components, not on all d
MIN_UMAP_TOKENS = 50    # below this UMAP's neighbour graph is meaningless: plain PCA
N_NEIGHBORS = 15
MIN_DIST = 0.1
RANDOM_STATE = 42
_KNN_CHUNK = 4096
_BUILD_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


# --------------------------------------------------------------------- vocabulary map
@dataclass(frozen=True)
class VocabMap:
    """2-D layout of the whole vocabulary; ``coords[i]`` is token id ``i``."""

    cache_key: str
    coords: np.ndarray        # (V, 2) float32
    method: str               # "umap" or "pca" (tiny vocabularies)
    d_model: int
    build_seconds: float      # how long the original build took
    from_cache: bool          # True when this object was read from disk

    @property
    def n_tokens(self) -> int:
        return int(self.coords.shape[0])


def _cache_path(cache_key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", cache_key).strip("._") or "default"
    return cache_dir("vocab_maps") / f"{safe}.npz"


def _fingerprint(embedding: torch.Tensor) -> np.ndarray:
    """A few cheap numbers that change when the matrix does (not a cryptographic hash)."""
    e = embedding.detach().double()
    return np.array([e.sum().item(), e.abs().sum().item(), e[0].sum().item(),
                     e[-1].sum().item()], dtype=np.float64)


def load_vocab_map(cache_key: str, embedding: torch.Tensor | None = None) -> VocabMap | None:
    """Read a saved map; None if absent, unreadable, stale, or not for ``embedding``."""
    path = _cache_path(cache_key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format_version"]) != FORMAT_VERSION:
                return None
            coords = z["coords"].astype(np.float32)
            if embedding is not None:
                if coords.shape[0] != embedding.shape[0] or int(z["d_model"]) != embedding.shape[1]:
                    return None
                if not np.allclose(z["fingerprint"], _fingerprint(embedding), rtol=1e-6):
                    return None
            coords.setflags(write=False)
            return VocabMap(cache_key, coords, str(z["method"]), int(z["d_model"]),
                            float(z["build_seconds"]), True)
    except (OSError, KeyError, ValueError):
        return None


def _save(vmap: VocabMap, fingerprint: np.ndarray) -> None:
    path = _cache_path(vmap.cache_key)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, coords=vmap.coords, method=np.array(vmap.method),
                 d_model=np.array(vmap.d_model), build_seconds=np.array(vmap.build_seconds),
                 fingerprint=fingerprint, format_version=np.array(FORMAT_VERSION))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _pca(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Project rows of ``x`` (N, d) onto their top ``dims`` principal components."""
    x = x.double()
    xc = x - x.mean(dim=0)                                   # (N, d)
    _, vecs = torch.linalg.eigh(xc.T @ xc)                   # (d, d), ascending
    top = vecs[:, -dims:].flip(1)                            # (d, dims)
    out = (xc @ top).float()                                 # (N, dims)
    if out.shape[1] < dims:                                  # d < dims: pad with zeros
        out = torch.cat([out, out.new_zeros(out.shape[0], dims - out.shape[1])], dim=1)
    return out


def _exact_knn(x: torch.Tensor, k: int, progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k-nearest neighbours (self included), in chunks; faster than NN-descent."""
    unit = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (N, p)
    idx, dist = [], []
    n = unit.shape[0]
    for start in range(0, n, _KNN_CHUNK):
        sims = unit[start:start + _KNN_CHUNK] @ unit.T       # (chunk, N)
        v, i = sims.topk(k, dim=1)                           # (chunk, k)
        idx.append(i)
        dist.append((1.0 - v).clamp_min(0.0))
        progress(0.1 + 0.35 * min(1.0, (start + _KNN_CHUNK) / n), "neighbours")
    return (torch.cat(idx).numpy().astype(np.int64),
            torch.cat(dist).numpy().astype(np.float32))


def _umap_2d(x: torch.Tensor, progress: Progress) -> np.ndarray:
    """UMAP (cosine) of ``x`` (N, p) to (N, 2), with our exact neighbour graph."""
    knn_idx, knn_dist = _exact_knn(x, N_NEIGHBORS, progress)
    progress(0.45, "import_umap")
    import umap  # lazy: ~20 s the first time numba compiles

    progress(0.5, "layout")
    with warnings.catch_warnings():  # "no search index" and "n_jobs overridden" are expected
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=N_NEIGHBORS,
                            min_dist=MIN_DIST, random_state=RANDOM_STATE,
                            precomputed_knn=(knn_idx, knn_dist, None))
        return reducer.fit_transform(x.numpy()).astype(np.float32)


def _lock_for(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _BUILD_LOCKS.setdefault(key, threading.Lock())


def build_vocab_map(embedding: torch.Tensor, cache_key: str,
                    progress: Progress | None = None) -> VocabMap:
    """Return the 2-D map of all V tokens, building and caching it on first use.

    ``embedding`` (V, d). Rows are L2-normalised (cosine geometry), reduced by PCA to
    50 dims, then laid out by UMAP (cosine, fixed seed). V < 50 falls back to PCA-2D.
    ``progress(fraction, phase)`` gets phases: "cache", "pca", "neighbours",
    "import_umap", "layout", "save", "done" (pages translate the phase names).
    Concurrent callers for the same key wait for one build instead of repeating it.
    """
    report: Progress = progress or (lambda f, m: None)
    report(0.0, "cache")
    with _lock_for(cache_key):
        cached = load_vocab_map(cache_key, embedding)
        if cached is not None:
            report(1.0, "done")
            return cached
        t0 = time.perf_counter()
        e = embedding.detach().float().cpu()                     # (V, d)
        unit = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (V, d)
        report(0.05, "pca")
        if e.shape[0] < MIN_UMAP_TOKENS:
            coords, method = _pca(unit, 2).numpy().astype(np.float32), "pca"
        else:
            reduced = _pca(unit, min(PCA_DIMS, e.shape[1]))      # (V, 50)
            coords, method = _umap_2d(reduced, report), "umap"
        coords.setflags(write=False)
        vmap = VocabMap(cache_key, coords, method, int(e.shape[1]),
                        time.perf_counter() - t0, False)
        report(0.97, "save")
        _save(vmap, _fingerprint(embedding))
        report(1.0, "done")
        return vmap


# ----------------------------------------------------------------------- token labels
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


_UNICODE_TO_BYTE = {c: b for b, c in _bytes_to_unicode().items()}
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def _legible_bytes(raw: bytes) -> str:
    """Decode UTF-8; bytes that are not whole characters become ``<0xE7>``."""
    out: list[str] = []
    while raw:
        try:
            text, raw = raw.decode("utf-8"), b""
        except UnicodeDecodeError as err:
            text = raw[:err.start].decode("utf-8")
            bad, raw = raw[err.start:err.end], raw[err.end:]
            text += "".join(f"<0x{b:02X}>" for b in bad)
        out.append(text)
    return "".join(_visible_char(ch) for ch in "".join(out)) if out else ""


def _visible_char(ch: str) -> str:
    if ch in _VISIBLE:
        return _VISIBLE[ch]
    if unicodedata.category(ch) == "Cc" or ch == "\ufffd":  # never show a bare "�"
        return "".join(f"<0x{b:02X}>" for b in ch.encode("utf-8"))
    return ch


def _token_style(raw_tokens: Sequence[str]) -> str:
    """'byte' (GPT-2 byte-level BPE), 'sp' (SentencePiece ▁), or 'plain'."""
    n = max(1, len(raw_tokens))
    if sum(t.startswith("Ġ") for t in raw_tokens) > 0.005 * n:
        return "byte"
    if sum(t.startswith("▁") for t in raw_tokens) > 0.005 * n:
        return "sp"
    return "plain"


def _label(raw: str, style: str) -> str:
    if style == "byte" and all(ch in _UNICODE_TO_BYTE for ch in raw):
        return _legible_bytes(bytes(_UNICODE_TO_BYTE[ch] for ch in raw))
    if style == "sp":
        raw = raw.replace("▁", " ")
    return "".join(_visible_char(ch) for ch in raw)


def _special_ids(tokenizer: Any) -> set[int]:
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids = {int(i) for i in added}
    ids.update(int(i) for i in (getattr(tokenizer, "all_special_ids", None) or []))
    return ids


def token_labels(tokenizer: Any, vocab_size: int | None = None) -> list[str]:
    """A legible, consistent label for every token id (see the module docstring).

    ``vocab_size`` pads (ids the tokenizer does not know, e.g. a padded embedding
    matrix, get ``<unused N>``) or truncates the list to match the embedding rows.
    """
    n = len(tokenizer)
    raw = [t if t is not None else "" for t in tokenizer.convert_ids_to_tokens(list(range(n)))]
    style = _token_style(raw)
    special = _special_ids(tokenizer)
    labels = [raw[i] if i in special else _label(raw[i], style) for i in range(n)]
    size = n if vocab_size is None else vocab_size
    labels = labels[:size] + [f"<unused {i}>" for i in range(n, size)]
    return [lab if lab else "<empty>" for lab in labels]


# ------------------------------------------------------------------------ word lookup
@dataclass(frozen=True)
class WordTokens:
    """How a user's word maps to token ids. ``split``: several pieces, vector = their mean."""

    word: str                  # what the user typed (stripped)
    text: str                  # the exact text tokenized: " word" (mid-sentence form) or "word"
    ids: tuple[int, ...]
    pieces: tuple[str, ...]    # legible labels of ``ids``

    @property
    def split(self) -> bool:
        return len(self.ids) > 1


def lookup_word(tokenizer: Any, word: str, labels: Sequence[str] | None = None) -> WordTokens:
    """Prefer one token for " word", then one for "word", else all pieces of " word".

    Raises ValueError for an empty word. Pass ``labels`` (from :func:`token_labels`)
    to avoid recomputing them. Tokenizers are not thread-safe: call under the app's lock.
    """
    word = word.strip()
    if not word:
        raise ValueError("empty word")
    candidates = []
    for text in (" " + word, word):
        ids = tuple(int(i) for i in tokenizer.encode(text, add_special_tokens=False))
        candidates.append((text, ids))
        if len(ids) == 1:
            break
    text, ids = next(((t, i) for t, i in candidates if len(i) == 1), candidates[0])
    if not ids:
        raise ValueError(f"no tokens for {word!r}")
    names = labels if labels is not None else token_labels(tokenizer)
    return WordTokens(word, text, ids, tuple(names[i] for i in ids))


Query = int | WordTokens | torch.Tensor


def _unit_rows(embedding: torch.Tensor) -> torch.Tensor:
    e = embedding.detach().float()
    return e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (V, d)


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


def _cosines(unit: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    v = vector / vector.norm().clamp_min(1e-12)
    return unit @ v  # (V,)


# ------------------------------------------------------------------ nearest neighbours
@dataclass(frozen=True)
class Neighbours:
    query: str
    ids: tuple[int, ...]
    labels: tuple[str, ...]
    similarities: tuple[float, ...]   # cosine, descending


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
    sims = _cosines(_unit_rows(embedding), _vector(embedding, vector_or_id))
    skip = tuple(exclude) + (_query_ids(vector_or_id) if exclude_query else ())
    return _top(sims, token_labels, _query_name(vector_or_id, token_labels), k, skip)


# ----------------------------------------------------------------------- word pairs
@dataclass(frozen=True)
class PairSimilarity:
    first: WordTokens
    second: WordTokens
    similarity: float                 # cosine of the two (mean-of-pieces) vectors


def pair_similarity(embedding: torch.Tensor,
                    pairs: Sequence[tuple[WordTokens, WordTokens]]) -> tuple[PairSimilarity, ...]:
    """Cosine similarity of each pair of looked-up words, e.g. cat/dog vs cat/hamburger."""
    out = []
    for a, b in pairs:
        va, vb = _vector(embedding, a), _vector(embedding, b)
        cos = torch.nn.functional.cosine_similarity(va, vb, dim=0, eps=1e-12)
        out.append(PairSimilarity(a, b, float(cos)))
    return tuple(out)


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


def _rank(sims: torch.Tensor, value: float, exclude: Sequence[int]) -> int:
    s = sims.clone()
    if len(exclude):
        s[torch.as_tensor(list(exclude), dtype=torch.long)] = -float("inf")
    return 1 + int((s > value).sum())


def analogy(embedding: torch.Tensor, labels: Sequence[str], a: int | WordTokens,
            b: int | WordTokens, c: int | WordTokens, k: int = 10,
            expected: int | WordTokens | None = None) -> Analogy:
    """Which tokens lie closest to ``a − b + c``? (3CosAdd on unit vectors.)"""
    unit = _unit_rows(embedding)                                  # (V, d)

    def u(q: Query) -> torch.Tensor:
        v = _vector(embedding, q)
        return v / v.norm().clamp_min(1e-12)

    target = u(a) - u(b) + u(c)                                   # (d,)
    sims = _cosines(unit, target)                                 # (V,)
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
