"""The :class:`Trace`: everything one forward pass computed, immutable, on the CPU.

Large captures are stored compactly: causal attention keeps only its lower triangle, and
past a memory budget tensors are kept in float16 (``precision``). Every accessor returns a
fresh float32 tensor, so callers can never change what is cached and shared.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

FORMAT_VERSION = 1


def pack_causal(weights: torch.Tensor) -> torch.Tensor:
    """(H, T, T) causal attention -> (H, T(T+1)/2): the lower triangle, row by row."""
    T = weights.shape[-1]
    rows, cols = torch.tril_indices(T, T, device=weights.device)
    return weights[:, rows, cols]


def unpack_causal(packed: torch.Tensor, T: int) -> torch.Tensor:
    """(H, T(T+1)/2) -> (H, T, T) float32 with zeros above the diagonal (the causal mask)."""
    rows, cols = torch.tril_indices(T, T)
    full = torch.zeros(packed.shape[0], T, T, dtype=torch.float32)
    full[:, rows, cols] = packed.float()
    return full


@dataclass(frozen=True)
class RotaryInfo:
    """Rotary position embedding parameters: pair i of a head rotates by pos * inv_freq[i]."""

    theta: float
    head_dim: int
    inv_freq: torch.Tensor           # (head_dim / 2,)


@dataclass(frozen=True, eq=False)
class Trace:
    """Every stage of one forward pass. Shapes: T tokens, n layers, H heads, d model width."""

    model_name: str
    text: str
    token_ids: torch.Tensor          # (T,) exactly the ids the model saw
    tokens: tuple[str, ...]          # a legible label per token
    token_bytes: tuple[bytes, ...]   # the raw bytes each token stands for
    truncated: bool
    arch: str
    n_layers: int
    n_heads: int
    d_model: int
    d_mlp: int
    vocab_size: int
    precision: str                   # "float32", or "float16" for long prompts
    rotary: RotaryInfo | None
    ablated_heads: frozenset = frozenset()
    ablated_mlps: frozenset = frozenset()
    _embeddings: torch.Tensor = field(default=None, repr=False)   # (T, d)
    _positions: torch.Tensor | None = field(default=None, repr=False)
    _residual: torch.Tensor = field(default=None, repr=False)     # (n+1, T, d)
    _attn_out: torch.Tensor = field(default=None, repr=False)     # (n, T, d)
    _mlp_out: torch.Tensor = field(default=None, repr=False)      # (n, T, d)
    _mlp_act: torch.Tensor = field(default=None, repr=False)      # (n, T, d_mlp)
    _attn_packed: torch.Tensor = field(default=None, repr=False)  # (n, H, T(T+1)/2)
    _logits: torch.Tensor = field(default=None, repr=False)       # (T, V)
    _last_logits: torch.Tensor = field(default=None, repr=False)  # (V,) float32

    @property
    def n_tokens(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def embeddings(self) -> torch.Tensor:
        """Token embeddings (T, d_model)."""
        return _fresh(self._embeddings)

    @property
    def positions(self) -> torch.Tensor | None:
        """Learned position embeddings (T, d_model), or None for rotary models."""
        return None if self._positions is None else _fresh(self._positions)

    @property
    def residual(self) -> torch.Tensor:
        """Residual stream entering each block, then leaving the last one: (n+1, T, d)."""
        return _fresh(self._residual)

    @property
    def attn_out(self) -> torch.Tensor:
        return _fresh(self._attn_out)

    @property
    def mlp_out(self) -> torch.Tensor:
        return _fresh(self._mlp_out)

    @property
    def mlp_activations(self) -> torch.Tensor:
        """MLP hidden activations, the input of each down projection: (n, T, d_mlp)."""
        return _fresh(self._mlp_act)

    def mlp_activation(self, layer: int) -> torch.Tensor:
        """MLP hidden activations of one layer (T, d_mlp), without copying the others."""
        return _fresh(self._mlp_act[layer])

    @property
    def attentions(self) -> torch.Tensor:
        """All attention weights (n, H, T, T). Prefer :meth:`attention` for long prompts."""
        return torch.stack([self.attention(layer) for layer in range(self.n_layers)])

    def attention(self, layer: int) -> torch.Tensor:
        """Attention weights of one layer (H, T, T); rows are queries, columns keys."""
        return unpack_causal(self._attn_packed[layer], self.n_tokens)

    @property
    def logits(self) -> torch.Tensor:
        """Logits at every position (T, vocab); the last row is always exact float32."""
        full = _fresh(self._logits)
        full[-1] = self._last_logits
        return full

    @property
    def next_token_logits(self) -> torch.Tensor:
        """Logits for the token after the prompt (vocab,), float32."""
        return self._last_logits.clone()

    def nbytes(self) -> int:
        """Bytes of tensor data this trace keeps."""
        tensors = [self.token_ids, self._embeddings, self._positions, self._residual, self._attn_out,
                   self._mlp_out, self._mlp_act, self._attn_packed, self._logits, self._last_logits]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    # ------------------------------------------------------------ save / load

    def save(self, path: str | Path | BinaryIO) -> str | Path | BinaryIO:
        """Write an .npz (a path or a binary file object): every tensor plus JSON metadata."""
        arrays = {name: getattr(self, name).numpy() for name in _TENSOR_FIELDS
                  if getattr(self, name) is not None}
        arrays["token_ids"] = self.token_ids.numpy()
        if self.rotary is not None:
            arrays["rotary_inv_freq"] = self.rotary.inv_freq.numpy()
        meta = self.metadata()
        arrays["metadata"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        if hasattr(path, "write"):
            np.savez_compressed(path, **arrays)
            return path
        path = Path(path)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    def to_bytes(self) -> bytes:
        """The .npz file as bytes (for a download button)."""
        buffer = io.BytesIO()
        self.save(buffer)
        return buffer.getvalue()

    def metadata(self) -> dict:
        """Everything but the tensors, as JSON-ready values."""
        return {
            "format": FORMAT_VERSION, "model_name": self.model_name, "text": self.text,
            "tokens": list(self.tokens), "token_bytes": [b.hex() for b in self.token_bytes],
            "truncated": self.truncated, "arch": self.arch, "n_layers": self.n_layers,
            "n_heads": self.n_heads, "d_model": self.d_model, "d_mlp": self.d_mlp,
            "vocab_size": self.vocab_size, "precision": self.precision,
            "rotary": None if self.rotary is None else {"theta": self.rotary.theta,
                                                        "head_dim": self.rotary.head_dim},
            "ablated_heads": sorted(map(list, self.ablated_heads)),
            "ablated_mlps": sorted(self.ablated_mlps),
        }

    @classmethod
    def load(cls, path: str | Path | BinaryIO) -> "Trace":
        """Read a trace written by :meth:`save` (a path or a binary file object)."""
        source = path if hasattr(path, "read") else Path(path)
        with np.load(source, allow_pickle=False) as data:
            meta = json.loads(bytes(data["metadata"]).decode("utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"Unsupported trace file format {meta.get('format')!r}.")
            tensors = {name: torch.from_numpy(data[name].copy()) for name in _TENSOR_FIELDS
                       if name in data.files}
            token_ids = torch.from_numpy(data["token_ids"].copy())
            inv_freq = torch.from_numpy(data["rotary_inv_freq"].copy()) if "rotary_inv_freq" in data.files else None
        rotary = meta.pop("rotary")
        return cls(
            model_name=meta["model_name"], text=meta["text"], token_ids=token_ids,
            tokens=tuple(meta["tokens"]), token_bytes=tuple(bytes.fromhex(b) for b in meta["token_bytes"]),
            truncated=meta["truncated"], arch=meta["arch"], n_layers=meta["n_layers"],
            n_heads=meta["n_heads"], d_model=meta["d_model"], d_mlp=meta["d_mlp"],
            vocab_size=meta["vocab_size"], precision=meta["precision"],
            rotary=None if rotary is None else RotaryInfo(rotary["theta"], rotary["head_dim"], inv_freq),
            ablated_heads=frozenset(tuple(x) for x in meta["ablated_heads"]),
            ablated_mlps=frozenset(meta["ablated_mlps"]),
            **tensors,
        )


_TENSOR_FIELDS = ("_embeddings", "_positions", "_residual", "_attn_out", "_mlp_out", "_mlp_act",
                  "_attn_packed", "_logits", "_last_logits")


def _fresh(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32, copy=True)
