"""The vocabulary map: a 2-D layout of every token vector, built once per model and cached.

Rows of the input embedding matrix ``E`` (V, d) are L2-normalised (cosine geometry),
reduced by PCA to 50 dims and laid out by UMAP (cosine, fixed seed). The first build
takes about 30–60 s on SmolLM2 (numba compiles UMAP); the result is saved as a small
``.npz`` under the cache folder and loads in well under a second afterwards.

A vocabulary larger than :data:`MAX_LAYOUT_TOKENS` (Gemma 3 has 262,144 tokens) is laid out
on its first :data:`MAX_LAYOUT_TOKENS` ordinary pieces (SentencePiece and BPE vocabularies keep
their pieces in order of score or merge rank, so these are the common ones; special, unused
and byte tokens are left out). Any other token gets its place when a page asks for it
(:func:`place`): the similarity-weighted mean of its :data:`PLACE_NEIGHBOURS` nearest laid-out
tokens (cosine, in the same PCA space). So the user's prompt and every neighbour a page lists
are on the map, and ``laid_out`` says which tokens UMAP itself saw.
"""
from __future__ import annotations

import os
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from explainer.paths import cache_dir

Progress = Callable[[float, str], None]

FORMAT_VERSION = 2
MAX_LAYOUT_TOKENS = 50_000
PLACE_NEIGHBOURS = 10
PCA_DIMS = 50           # UMAP runs on the top principal components, not on all d
MIN_UMAP_TOKENS = 50    # below this UMAP's neighbour graph is meaningless: plain PCA
N_NEIGHBORS = 15
MIN_DIST = 0.1
RANDOM_STATE = 42
_KNN_CHUNK = 4096
_BUILD_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class VocabMap:
    """2-D layout of the whole vocabulary; ``coords[i]`` is token id ``i``."""

    cache_key: str
    coords: np.ndarray        # (V, 2) float32
    method: str               # "umap" or "pca" (tiny vocabularies)
    d_model: int
    build_seconds: float      # how long the original build took
    from_cache: bool          # True when this object was read from disk
    laid_out: np.ndarray | None = None   # (V,) bool, big vocabularies: the tokens UMAP laid out
    basis: np.ndarray | None = None      # (d, p) PCA directions and ``mean`` (p,) of the unit rows
    mean: np.ndarray | None = None

    @property
    def shown_ids(self) -> np.ndarray:
        """Ids drawn as the map's background: every token, or the laid-out part of a big vocabulary."""
        return np.arange(self.n_tokens) if self.laid_out is None else np.flatnonzero(self.laid_out)

    def has_place(self, ids: Sequence[int]) -> bool:
        return bool(np.isfinite(self.coords[np.asarray(list(ids), dtype=np.int64)]).all())

    @property
    def n_tokens(self) -> int:
        return int(self.coords.shape[0])


@dataclass(frozen=True)
class MapHighlights:
    """The map as a page shows it: every token's label, the prompt's tokens and a word's neighbours."""

    map: VocabMap
    labels: tuple[str, ...]            # (V,) one label per token id
    prompt_ids: tuple[int, ...]
    neighbour_ids: tuple[int, ...] = ()
    word: str = ""                     # whose neighbours are highlighted

    def rows(self) -> list[dict[str, object]]:
        """Every token that has a place on the map (a big vocabulary's unplaced tokens are left out)."""
        xy = self.map.coords
        placed = np.flatnonzero(np.isfinite(xy).all(axis=1))
        return [{"id": int(i), "token": self.labels[i], "x": float(xy[i, 0]), "y": float(xy[i, 1])} for i in placed]


def _cache_path(cache_key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", cache_key).strip("._") or "default"
    return cache_dir("vocab_maps") / f"{safe}.npz"


def _fingerprint(embedding: torch.Tensor) -> np.ndarray:
    """A few cheap numbers that change when the matrix does (not a cryptographic hash): sums over
    every 61st row, so a 262,144-row matrix costs milliseconds, not a float64 copy of it."""
    e = embedding.detach()[::61].double()
    return np.array([e.sum().item(), e.abs().sum().item(), embedding[0].double().sum().item(),
                     embedding[-1].double().sum().item()], dtype=np.float64)


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
            big = {k: z[k] for k in ("laid_out", "basis", "mean") if k in z.files}
            if "laid_out" in big:
                big["laid_out"] = big["laid_out"].astype(bool)
            return VocabMap(cache_key, coords, str(z["method"]), int(z["d_model"]),
                            float(z["build_seconds"]), True, **big)
    except (OSError, KeyError, ValueError):
        return None


def save_vocab_map(vmap: VocabMap, embedding: torch.Tensor) -> Path:
    """Write ``vmap`` as the cached map of ``embedding`` (V, d); atomic. Returns the path."""
    path = _cache_path(vmap.cache_key)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        big = {k: getattr(vmap, k) for k in ("laid_out", "basis", "mean") if getattr(vmap, k) is not None}
        np.savez(f, coords=vmap.coords, method=np.array(vmap.method), **big,
                 d_model=np.array(vmap.d_model), build_seconds=np.array(vmap.build_seconds),
                 fingerprint=_fingerprint(embedding), format_version=np.array(FORMAT_VERSION))
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return path


def _pca_basis(x: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and top ``dims`` principal directions (d, dims) of the rows of ``x`` (N, d)."""
    mean = x.mean(dim=0)
    xc = (x - mean).double() if x.shape[0] <= MAX_LAYOUT_TOKENS else x - mean   # float64 while it is cheap
    _, vecs = torch.linalg.eigh((xc.T @ xc).double())        # (d, d), ascending
    return mean, vecs[:, -dims:].flip(1).float()             # (d,), (d, dims)


def _project(x: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor, dims: int) -> torch.Tensor:
    """Rows of ``x`` (N, d) on the principal directions, zero-padded to ``dims``: (N, dims)."""
    out = ((x - mean).double() @ basis.double()).float()    # (N, p)
    if out.shape[1] < dims:                                  # d < dims: pad with zeros
        out = torch.cat([out, out.new_zeros(out.shape[0], dims - out.shape[1])], dim=1)
    return out


def _pca(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Project rows of ``x`` (N, d) onto their top ``dims`` principal components."""
    mean, basis = _pca_basis(x, min(dims, x.shape[1]))
    return _project(x, mean, basis, dims)


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


def _build(embedding: torch.Tensor, cache_key: str, report: Progress, ordinary: np.ndarray | None) -> VocabMap:
    e = embedding.detach().float().cpu()                         # (V, d)
    unit = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)      # (V, d)
    report(0.05, "pca")
    V, d = e.shape
    if V < MIN_UMAP_TOKENS:
        coords = _pca(unit, 2).numpy().astype(np.float32)
        coords.setflags(write=False)
        return VocabMap(cache_key, coords, "pca", d, 0.0, False)
    if V <= MAX_LAYOUT_TOKENS:
        coords = _umap_2d(_pca(unit, min(PCA_DIMS, d)), report)   # (V, 50) → (V, 2)
        coords.setflags(write=False)
        return VocabMap(cache_key, coords, "umap", d, 0.0, False)
    laid_out = layout_subset(V, ordinary)
    members = torch.from_numpy(np.flatnonzero(laid_out))
    mean, basis = _pca_basis(unit[members], min(PCA_DIMS, d))
    layout = _umap_2d(_project(unit[members], mean, basis, PCA_DIMS), report)    # (M, 2)
    coords = np.full((V, 2), np.nan, dtype=np.float32)
    coords[members.numpy()] = layout
    coords.setflags(write=False)
    return VocabMap(cache_key, coords, "umap", d, 0.0, False, laid_out, basis.numpy(), mean.numpy())


def ordinary_tokens(labels: Sequence[str]) -> np.ndarray:
    """(V,) True for ordinary tokens; False for special (``<pad>``), unused (``<unused7>``) and byte
    (``<0xE7>``) tokens, which a big vocabulary's map leaves out of its layout."""
    return np.array([not (lab.startswith("<") and lab.endswith(">")) for lab in labels], dtype=bool)


def layout_subset(n_tokens: int, ordinary: np.ndarray | None = None) -> np.ndarray:
    """(V,) bool: the first :data:`MAX_LAYOUT_TOKENS` ids among the ``ordinary`` ones (all when None)."""
    ok = np.ones(n_tokens, dtype=bool) if ordinary is None else np.asarray(ordinary, dtype=bool)
    mask = np.zeros(n_tokens, dtype=bool)
    mask[np.flatnonzero(ok)[:MAX_LAYOUT_TOKENS]] = True
    return mask


def _unit(rows: torch.Tensor) -> torch.Tensor:
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)


def placement_base(vmap: VocabMap, embedding: torch.Tensor) -> torch.Tensor | None:
    """The laid-out tokens in PCA space, unit length (M, p): what :func:`place` compares with.
    About a second for 50,000 tokens; keep it (one per map) when placing often."""
    if vmap.basis is None:
        return None
    members = torch.from_numpy(np.flatnonzero(vmap.laid_out))
    rows = _unit(embedding.detach().float().cpu()[members])                             # (M, d)
    return _unit(_project(rows, torch.from_numpy(vmap.mean), torch.from_numpy(vmap.basis), PCA_DIMS))


def place(vmap: VocabMap, embedding: torch.Tensor, ids: Sequence[int],
          base: torch.Tensor | None = None) -> VocabMap:
    """``vmap`` with a place for every token in ``ids``: a token UMAP did not lay out goes to the
    similarity-weighted mean of its :data:`PLACE_NEIGHBOURS` nearest laid-out tokens (cosine in
    PCA space). ``base``: :func:`placement_base`, if already computed."""
    want = np.array(sorted({int(i) for i in ids if 0 <= int(i) < vmap.n_tokens}), dtype=np.int64)
    missing = want[~np.isfinite(vmap.coords[want]).all(axis=1)] if len(want) else want
    if not len(missing) or vmap.basis is None:
        return vmap
    base = placement_base(vmap, embedding) if base is None else base                   # (M, p)
    rows = _unit(embedding.detach().float().cpu()[torch.from_numpy(missing)])           # (P, d)
    query = _unit(_project(rows, torch.from_numpy(vmap.mean), torch.from_numpy(vmap.basis), PCA_DIMS))
    sims, near = (query @ base.T).topk(PLACE_NEIGHBOURS, dim=1)                         # (P, k)
    weights = sims.clamp_min(1e-6)
    xy = torch.from_numpy(vmap.coords[np.flatnonzero(vmap.laid_out)])                   # (M, 2)
    coords = vmap.coords.copy()
    coords[missing] = ((weights[..., None] * xy[near]).sum(1) / weights.sum(1, keepdim=True)).numpy()
    coords.setflags(write=False)
    return VocabMap(vmap.cache_key, coords, vmap.method, vmap.d_model, vmap.build_seconds, vmap.from_cache,
                    vmap.laid_out, vmap.basis, vmap.mean)


def build_vocab_map(embedding: torch.Tensor, cache_key: str,
                    progress: Progress | None = None, ordinary: np.ndarray | None = None) -> VocabMap:
    """Return the 2-D map of all V tokens, building and caching it on first use.

    ``embedding`` (V, d). V < 50 falls back to PCA-2D; above :data:`MAX_LAYOUT_TOKENS` the first
    ones of ``ordinary`` (V,) bool (not special, unused or byte tokens) are laid out and the
    others placed on demand (:func:`place`). ``progress(fraction, phase)`` gets
    phases: "cache", then "wait" (only while another caller builds the same key), "pca",
    "neighbours", "import_umap", "layout", "save", "done" (pages translate the names).
    Concurrent callers for the same key wait for one build instead of repeating it.
    """
    report: Progress = progress or (lambda f, m: None)
    report(0.0, "cache")
    lock = _lock_for(cache_key)
    if not lock.acquire(blocking=False):
        report(0.0, "wait")
        lock.acquire()
    try:
        cached = load_vocab_map(cache_key, embedding)
        if cached is not None:
            report(1.0, "done")
            return cached
        t0 = time.perf_counter()
        vmap = _build(embedding, cache_key, report, ordinary)
        vmap = VocabMap(vmap.cache_key, vmap.coords, vmap.method, vmap.d_model, time.perf_counter() - t0,
                        False, vmap.laid_out, vmap.basis, vmap.mean)
        report(0.97, "save")
        save_vocab_map(vmap, embedding)
        report(1.0, "done")
        return vmap
    finally:
        lock.release()
