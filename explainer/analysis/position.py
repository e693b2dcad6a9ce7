"""How a model knows word order: learned position vectors (GPT-2) or rotary positions (Llama).

Attention itself only compares vectors; without position information "dog bites man" and
"man bites dog" would give every token the same result (a bag of words). GPT-2 *adds* a
learned vector per position to each token vector; Llama-family models *rotate* each query
and key by an angle proportional to its position (RoPE), so q·k depends on how far apart
two tokens are.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from explainer.analysis.qk import QueryKeys, rotate
from explainer.devices import host
from explainer.export import rounded
from explainer.models import LoadedModel
from explainer.trace import RotaryInfo, Trace

MAX_SHOWN = 128          # rows/columns of a position heatmap (positions are subsampled past this)


@dataclass(frozen=True)
class LearnedPositions:
    """A sample of the learned position table. vectors (P, D), similarity (P, P)."""

    positions: tuple[int, ...]    # which positions (every ``stride``-th)
    dims: tuple[int, ...]         # which dimensions of the vectors are shown
    vectors: np.ndarray           # (P, D) the position vectors on those dims
    similarity: np.ndarray        # (P, P) cosine similarity of the full vectors
    n_positions: int              # rows of the whole table
    d_model: int

    @property
    def stride(self) -> int:
        """Every how many positions one is shown."""
        return self.positions[1] - self.positions[0] if len(self.positions) > 1 else 1

    @property
    def dim_stride(self) -> int:
        return self.dims[1] - self.dims[0] if len(self.dims) > 1 else 1

    @property
    def similarities(self) -> "PositionSimilarity":
        """The position × position cosine table (its own figure and download)."""
        return PositionSimilarity(self.positions, self.similarity)

    def rows(self) -> dict[str, object]:
        return {"positions": list(self.positions), "dims": list(self.dims), "vectors": rounded(self.vectors)}


@dataclass(frozen=True)
class PositionSimilarity:
    """Cosine similarity between the sampled position vectors. similarity (P, P)."""

    positions: tuple[int, ...]
    similarity: np.ndarray

    def rows(self) -> dict[str, object]:
        return {"positions": list(self.positions), "cosine": rounded(self.similarity, 3)}


def learned_positions(model: LoadedModel, max_shown: int = MAX_SHOWN) -> LearnedPositions:
    """Every ``stride``-th row of the model's position embedding (wpe), and their cosine similarity."""
    module = model.arch.position_embedding(model.hf_model)
    if module is None:
        raise ValueError("This model has no learned position table; it uses rotary positions.")
    table = module.weight.detach().float().cpu()                 # (n_positions, d)
    P, d = table.shape
    stride = max(1, -(-P // max_shown))
    rows = torch.arange(0, P, stride)
    dims = torch.arange(0, d, max(1, -(-d // max_shown)))
    sample = table[rows]                                         # (P', d)
    unit = sample / sample.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return LearnedPositions(tuple(rows.tolist()), tuple(dims.tolist()), sample[:, dims].numpy(),
                            (unit @ unit.T).numpy(), P, d)


@dataclass(frozen=True)
class AddedPositions:
    """Sizes of what is added at each prompt position: token vector, position vector, their sum. (T,)"""

    token_norm: np.ndarray
    position_norm: np.ndarray
    sum_norm: np.ndarray
    tokens: tuple[str, ...] = ()    # the prompt's token labels

    def rows(self) -> list[dict[str, object]]:
        return [{"position": i, "token": tok, "token_norm": float(a), "position_norm": float(b), "sum_norm": float(c)}
                for i, (tok, a, b, c) in enumerate(zip(self.tokens, self.token_norm, self.position_norm,
                                                        self.sum_norm))]


def added_positions(trace: Trace) -> AddedPositions:
    """Norms of ``trace.embeddings``, ``trace.positions`` and their sum (learned-position models)."""
    if trace.positions is None:
        raise ValueError("This trace has no learned position vectors (the model uses rotary positions).")
    tok, pos = trace.embeddings, trace.positions                # (T, d) each, on the trace's device
    norms = host(torch.stack([tok.norm(dim=-1), pos.norm(dim=-1), (tok + pos).norm(dim=-1)]))   # (3, T)
    return AddedPositions(norms[0].numpy(), norms[1].numpy(), norms[2].numpy(), trace.tokens)


@dataclass(frozen=True)
class RotaryFrequencies:
    """Per dimension pair i: angle per position step (radians) and the wavelength in tokens."""

    inv_freq: np.ndarray          # (hd/2,)
    wavelength: np.ndarray        # (hd/2,) 2π / inv_freq: tokens for one full turn
    theta: float
    head_dim: int

    def rows(self) -> list[dict[str, object]]:
        return [{"pair": i, "radians_per_token": float(f), "tokens_per_turn": float(w)}
                for i, (f, w) in enumerate(zip(self.inv_freq, self.wavelength))]


def rotary_frequencies(info: RotaryInfo) -> RotaryFrequencies:
    f = info.inv_freq.double().numpy()
    return RotaryFrequencies(f, 2 * np.pi / f, info.theta, info.head_dim)


@dataclass(frozen=True)
class RotaryBases:
    """Every rotary base of a model (Gemma 3: θ = 10,000 on local layers, 1,000,000 on global ones).

    ``bases[i]`` is used by the blocks ``layers[i]``, which read at most ``windows[i]`` positions
    back (None: the whole text, up to ``context``).
    """

    bases: tuple[RotaryFrequencies, ...]
    layers: tuple[tuple[int, ...], ...]
    windows: tuple[int | None, ...]
    context: int                  # the longest text the model was made for

    def slow_pairs(self, k: int, span: int) -> int:
        """How many pairs of base ``k`` turn less than once over ``span`` tokens (a coarse, unrepeating signal)."""
        return int((self.bases[k].wavelength > span).sum())

    def rows(self) -> list[dict[str, object]]:
        return [{"theta": f.theta, "layers": " ".join(map(str, layers)), **row}
                for f, layers in zip(self.bases, self.layers) for row in f.rows()]


def rotary_bases(trace: Trace, context: int) -> RotaryBases:
    """The rotary bases of ``trace``'s model, slowest last, with their layers and the window they read."""
    infos = trace.rotaries or ((trace.rotary,) if trace.rotary is not None else ())
    if not infos:
        raise ValueError("This trace has no rotary positions (the model uses learned position vectors).")
    infos = sorted(infos, key=lambda i: i.theta)
    layers = tuple(tuple(i.layers) or tuple(range(trace.n_layers)) for i in infos)
    return RotaryBases(tuple(rotary_frequencies(i) for i in infos), layers,
                       tuple(_window_of(trace, ls) for ls in layers), int(context))


def _window_of(trace: Trace, layers: Sequence[int]) -> int | None:
    """The widest window these layers read (None when one of them reads the whole text)."""
    if len(trace.windows) != trace.n_layers:
        return None
    windows = [trace.windows[l] for l in layers]
    return None if any(w is None for w in windows) else max(windows)


@dataclass(frozen=True)
class DistanceCurve:
    """q·k (rotated) as a function of the distance between query and key. Arrays (N+1,)."""

    distance: np.ndarray          # 0..N
    one_pair: np.ndarray          # one random vector q compared with itself k = q, rotated apart
    average: np.ndarray           # the expectation over random q = k: mean_i cos(distance · f_i)
    smoothed: np.ndarray | None = None   # the average, also averaged over distances within ±20 % (log axes)

    def average_at(self, distance: float) -> float:
        """The average curve (smoothed, if it was) at ``distance``, interpolated between the distances computed."""
        values = self.average if self.smoothed is None else self.smoothed
        return float(np.interp(distance, self.distance, values))

    def rows(self) -> list[dict[str, object]]:
        smooth = self.smoothed if self.smoothed is not None else [None] * len(self.distance)
        return [{"distance": int(d), "one_vector": float(o), "average": float(a),
                 **({} if s is None else {"smoothed": float(s)})}
                for d, o, a, s in zip(self.distance, self.one_pair, self.average, smooth)]


def rotary_distance_curve(info: RotaryInfo, max_distance: int = 256, seed: int = 0,
                          distances: Sequence[int] | None = None) -> DistanceCurve:
    """How RoPE alone changes q·k when the same vector sits ``distance`` tokens apart (scores / q·q).

    At distances 0..``max_distance``, or at the given ``distances``.
    """
    hd = info.head_dim
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(hd, generator=gen, dtype=torch.float64)     # (hd,)
    dist = (torch.arange(max_distance + 1, dtype=torch.float64) if distances is None
            else torch.tensor(list(distances), dtype=torch.float64))   # (N+1,)
    max_distance = dist.numel() - 1
    angles = dist[:, None] * info.inv_freq.double()[None]       # (N+1, hd/2)
    cos = torch.cat((angles.cos(), angles.cos()), -1)           # (N+1, hd) Llama's half layout
    sin = torch.cat((angles.sin(), angles.sin()), -1)
    keys = rotate(q.expand(max_distance + 1, hd), cos, sin)     # the key rotated d steps (query at 0)
    one_pair = (keys @ q) / (q @ q)                             # (N+1,)
    # A rotated score only depends on the distance: q·R(d)q = Σ_i |q_i pair|² cos(d f_i).
    average = angles.cos().mean(-1)
    return DistanceCurve(dist.numpy().astype(int), one_pair.numpy(), average.numpy())


@dataclass(frozen=True)
class RealDistance:
    """The chosen query's q·k with every earlier key, with and without RoPE. Arrays (query+1,)."""

    layer: int
    head: int
    query: int
    distance: np.ndarray          # query − key position
    rotated: np.ndarray           # q·k as the model computes it (scaled by 1/√d)
    unrotated: np.ndarray         # the same vectors without the rotation (position removed)
    tokens: tuple[str, ...] = ()  # the prompt's token labels

    def rows(self) -> list[dict[str, object]]:
        return [{"distance": int(d), "key_position": self.query - int(d), "key": self.tokens[self.query - int(d)],
                 "score_rotated": float(r), "score_unrotated": float(u)}
                for d, r, u in zip(self.distance, self.rotated, self.unrotated)]


@dataclass(frozen=True)
class DistanceCurves:
    """The distance curve of every rotary base (same random vector, same distances)."""

    curves: tuple[DistanceCurve, ...]
    thetas: tuple[float, ...]
    layers: tuple[tuple[int, ...], ...]
    windows: tuple[int | None, ...]       # the window the layers of each base read (None: the whole text)

    def rows(self) -> list[dict[str, object]]:
        return [{"theta": theta, **row} for c, theta in zip(self.curves, self.thetas) for row in c.rows()]


def distance_curves(bases: RotaryBases, n_tokens: int, seed: int = 0) -> DistanceCurves:
    """Score against distance for every base. One base: distances 0..max(256, prompt) one by one.
    Several (local and global layers): from 0 to the model's context, denser near 0 (for a log axis)."""
    if len(bases.bases) == 1:
        grid = None
        longest = max(256, n_tokens)
    else:
        longest = max(bases.context, n_tokens)
        grid = np.unique(np.concatenate([np.arange(0, 64), np.geomspace(64, longest, 400).round()])).astype(int)
    infos = [RotaryInfo(f.theta, f.head_dim, torch.from_numpy(f.inv_freq)) for f in bases.bases]
    curves = [rotary_distance_curve(i, longest, seed, grid) for i in infos]
    if grid is not None:                  # on a log axis the fast pairs' wiggles look like noise: smooth them
        curves = [replace(c, smoothed=_smoothed_average(f.inv_freq, c.distance)) for c, f in zip(curves, bases.bases)]
    return DistanceCurves(tuple(curves), tuple(f.theta for f in bases.bases), bases.layers, bases.windows)


def _smoothed_average(inv_freq: np.ndarray, distance: np.ndarray, spread: float = 1.2, n: int = 64) -> np.ndarray:
    """mean_i cos(x · f_i) averaged over x geometrically spread in [d / spread, d · spread], per distance d."""
    d = np.maximum(distance.astype(float), 1e-9)[:, None]                       # (N, 1)
    x = d * np.geomspace(1 / spread, spread, n)[None, :]                        # (N, n)
    out = np.cos(x[..., None] * inv_freq[None, None, :]).mean(-1).mean(-1)      # (N,)
    out[distance == 0] = 1.0
    return out


def real_distance_scores(qk: QueryKeys, head: int, query: int, tokens: Sequence[str] = ()) -> RealDistance:
    """Scaled q·k of ``query`` against keys 0..query for one head, rotated vs not (from :func:`query_keys`).

    ``tokens``: the prompt's token labels, for the keys' names.
    """
    kv = qk.kv_head(head)
    rot = qk.k[kv, : query + 1] @ qk.q[head, query] * qk.scale            # (query+1,)
    raw = qk.k_unrotated[kv, : query + 1] @ qk.q_unrotated[head, query] * qk.scale
    return RealDistance(qk.layer, head, query, query - np.arange(query + 1), host(rot).numpy(), host(raw).numpy(),
                        tuple(tokens))
