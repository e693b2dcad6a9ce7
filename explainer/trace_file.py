"""A :class:`~explainer.trace.Trace` as an ``.npz`` file: what it keeps, plus JSON metadata.

The file holds the residual stream, the model's own next-token logits, the pass's small
summaries and the token bytes; every other stage is recomputed from them when the trace is
loaded with its model (or loaded by name the first time a stage is asked for).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import torch

from explainer.arch import RotaryInfo
from explainer.devices import host, on_device
from explainer.token_text import TokenText

if TYPE_CHECKING:
    from explainer.models import LoadedModel
    from explainer.trace import Trace

FORMAT_VERSION = 2


def metadata(trace: "Trace") -> dict:
    """Everything but the tensors, as JSON-ready values."""
    return {
        "format": FORMAT_VERSION, "model_name": trace.model_name, "text": trace.text,
        "tokens": list(trace.tokens), "token_bytes": [b.hex() for b in trace.token_bytes],
        "truncated": trace.truncated, "arch": trace.arch, "n_layers": trace.n_layers,
        "n_heads": trace.n_heads, "d_model": trace.d_model, "d_mlp": trace.d_mlp,
        "vocab_size": trace.vocab_size, "precision": trace.precision,
        "rotaries": [{"theta": r.theta, "head_dim": r.head_dim, "layers": list(r.layers)} for r in trace.rotaries],
        "windows": list(trace.windows),
        "ablated_heads": sorted(map(list, trace.ablated_heads)),
        "ablated_mlps": sorted(trace.ablated_mlps),
    }


def write(trace: "Trace", path: str | Path | BinaryIO) -> str | Path | BinaryIO:
    """Write ``trace`` to ``path`` (a file name or a binary file object)."""
    arrays = {"residual": host(trace._residual).numpy(), "last_logits": host(trace._last_logits).numpy(),
              "token_ids": host(trace.token_ids).numpy()}
    arrays.update({f"summary_{k}": host(v).numpy() for k, v in (trace._summary or {}).items()})
    for i, rot in enumerate(trace.rotaries):
        arrays[f"rotary_inv_freq_{i}"] = rot.inv_freq.numpy()
    arrays["metadata"] = np.frombuffer(json.dumps(metadata(trace)).encode("utf-8"), dtype=np.uint8)
    if hasattr(path, "write"):
        np.savez_compressed(path, **arrays)
        return path
    with Path(path).open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def read(cls: type, path: str | Path | BinaryIO, model: "LoadedModel | None" = None) -> "Trace":
    """Read a trace written by :func:`write` (pickle is never allowed). With ``model`` its tensors go to
    that model's device (where everything recomputed from them is computed); without, they stay on the CPU."""
    source = path if hasattr(path, "read") else Path(path)
    with np.load(source, allow_pickle=False) as data:
        meta = json.loads(bytes(data["metadata"]).decode("utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"Unsupported trace file format {meta.get('format')!r}; trace the text again.")
        arrays = {name: torch.from_numpy(data[name].copy()) for name in data.files if name != "metadata"}
    device = torch.device("cpu") if model is None else model.device
    rotaries = tuple(RotaryInfo(r["theta"], r["head_dim"], arrays[f"rotary_inv_freq_{i}"], tuple(r["layers"]))
                     for i, r in enumerate(meta["rotaries"]))
    return cls(
        model_name=meta["model_name"], text=meta["text"], token_ids=arrays["token_ids"],
        _text=TokenText((), pieces=[bytes.fromhex(b) for b in meta["token_bytes"]], labels=meta["tokens"]),
        truncated=meta["truncated"], arch=meta["arch"], n_layers=meta["n_layers"],
        n_heads=meta["n_heads"], d_model=meta["d_model"], d_mlp=meta["d_mlp"],
        vocab_size=meta["vocab_size"], precision=meta["precision"],
        rotary=rotaries[0] if rotaries else None, rotaries=rotaries, windows=tuple(meta["windows"]),
        ablated_heads=frozenset(tuple(x) for x in meta["ablated_heads"]),
        ablated_mlps=frozenset(meta["ablated_mlps"]),
        _residual=on_device(arrays["residual"], device), _last_logits=on_device(arrays["last_logits"], device),
        _model=model, _summary=on_device({k.removeprefix("summary_"): v for k, v in arrays.items()
                                          if k.startswith("summary_")}, device),
    )
