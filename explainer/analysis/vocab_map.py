"""The vocabulary map: a 2-D layout of every token vector, built once per model and cached.

Rows of the input embedding matrix ``E`` (V, d) are L2-normalised (cosine geometry),
reduced by PCA to 50 dims and laid out by UMAP (cosine, fixed seed). The first build
takes about 30–60 s on SmolLM2 (numba compiles UMAP); the result is saved as a small
``.npz`` under the cache folder and loads in well under a second afterwards.
"""
from __future__ import annotations

import os
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


@dataclass(frozen=True)
class MapHighlights:
    """The map as a page shows it: every token's label, the prompt's tokens and a word's neighbours."""

    map: VocabMap
    labels: tuple[str, ...]            # (V,) one label per token id
    prompt_ids: tuple[int, ...]
    neighbour_ids: tuple[int, ...] = ()
    word: str = ""                     # whose neighbours are highlighted

    def rows(self) -> list[dict[str, object]]:
        xy = self.map.coords.tolist()
        return [{"id": i, "token": lab, "x": x, "y": y} for i, (lab, (x, y)) in enumerate(zip(self.labels, xy))]


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


def save_vocab_map(vmap: VocabMap, embedding: torch.Tensor) -> Path:
    """Write ``vmap`` as the cached map of ``embedding`` (V, d); atomic. Returns the path."""
    path = _cache_path(vmap.cache_key)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, coords=vmap.coords, method=np.array(vmap.method),
                 d_model=np.array(vmap.d_model), build_seconds=np.array(vmap.build_seconds),
                 fingerprint=_fingerprint(embedding), format_version=np.array(FORMAT_VERSION))
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return path


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

    ``embedding`` (V, d). V < 50 falls back to PCA-2D. ``progress(fraction, phase)`` gets
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
        save_vocab_map(vmap, embedding)
        report(1.0, "done")
        return vmap
    finally:
        lock.release()
