"""The trace file format: named tensors and a JSON header in one ``.npz`` (pickle never allowed).

Only the format lives here. :class:`~explainer.trace.Trace` decides what goes in (the residual
stream, the model's own next-token logits, the pass's small summaries, its metadata) and builds
itself back from what :func:`read` returns; this module imports nothing of it, so the two never
import each other. Every other stage is recomputed when the trace is loaded with its model.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import numpy as np
import torch

FORMAT_VERSION = 2


def write(path: str | Path | BinaryIO, metadata: Mapping[str, Any],
          arrays: Mapping[str, torch.Tensor]) -> str | Path | BinaryIO:
    """Write ``arrays`` and ``metadata`` (JSON-ready) to ``path``, a file name or a binary file object."""
    packed = {name: t.detach().cpu().numpy() for name, t in arrays.items()}
    header = {"format": FORMAT_VERSION, **metadata}
    packed["metadata"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    if hasattr(path, "write"):
        np.savez_compressed(path, **packed)
        return path
    with Path(path).open("wb") as fh:
        np.savez_compressed(fh, **packed)
    return Path(path)


def read(path: str | Path | BinaryIO) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a file written by :func:`write`; an unknown format is refused."""
    source = path if hasattr(path, "read") else Path(path)
    with np.load(source, allow_pickle=False) as data:
        meta = json.loads(bytes(data["metadata"]).decode("utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"Unsupported trace file format {meta.get('format')!r}; trace the text again.")
        arrays = {name: torch.from_numpy(data[name].copy()) for name in data.files if name != "metadata"}
    return meta, arrays
