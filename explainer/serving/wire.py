"""The wire format between a front end and the cluster: JSON requests, safetensors results, never pickle.

A request is a small JSON object (:func:`encode_request`): the operation, the model's name and
revision, a request id, token ids and options. A result is one safetensors file
(:func:`encode_result`): every tensor and array it holds, raw, as a named entry, and everything
else (numbers, text, the structure around the arrays) as JSON in the file's metadata. Nothing in
either is ever executed: structure is rebuilt only from plain values, and a dataclass only when it
is one of this library's own (:func:`_dataclass_named`), from its fields.

Values that travel (:func:`pack` / :func:`unpack`): None, bool, int, float (NaN and ±inf too),
str, bytes, lists, tuples, sets and frozensets, dicts (any hashable keys), torch tensors, numpy
arrays (their read-only flag kept) and numpy scalars, and frozen dataclasses of ``explainer``.
A request holds arrays only when it continues an earlier result (input attribution's path, to
refine): inline, their raw bytes in base64, numbers only, within the request's size limit.
"""
from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import struct
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

MAX_REQUEST_BYTES = 4 * 2**20          # token ids and options: a 8,192-token request is ~60 KB
INLINE_DTYPES = frozenset({"float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8",
                           "bool"})        # what an array in a request may hold
OWN_PACKAGE = "explainer."


class WireError(ValueError):
    """A request or result that is not in this format (or names what may not travel)."""


# ---------------------------------------------------------------- values


def pack(value: Any, tensors: dict[str, np.ndarray] | None = None) -> Any:
    """``value`` as JSON-ready structure; arrays go into ``tensors`` (refused when it is None)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return _pack_array(value, tensors)
    if isinstance(value, list):
        return [pack(v, tensors) for v in value]
    if isinstance(value, tuple):
        return {"$t": [pack(v, tensors) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"$s" if isinstance(value, set) else "$fs": [pack(v, tensors) for v in value]}
    if isinstance(value, dict):
        return {"$d": [[pack(k, tensors), pack(v, tensors)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        _dataclass_named(f"{cls.__module__}:{cls.__qualname__}")          # may it travel?
        fields = {f.name: pack(getattr(value, f.name), tensors) for f in dataclasses.fields(value) if f.init}
        return {"$c": f"{cls.__module__}:{cls.__qualname__}", "f": fields}
    raise WireError(f"A {type(value).__name__} cannot travel to or from the cluster.")


def _pack_array(value: torch.Tensor | np.ndarray, tensors: dict[str, np.ndarray] | None) -> dict:
    is_torch = isinstance(value, torch.Tensor)
    array = np.ascontiguousarray(value.detach().to("cpu").numpy() if is_torch else value)
    if tensors is None:                   # in a request (a result to continue): inline, its raw bytes in base64
        if array.dtype.name not in INLINE_DTYPES:
            raise WireError(f"An array of {array.dtype.name} cannot travel in a request.")
        return {"$A": {"dtype": array.dtype.name, "shape": list(array.shape), "torch": is_torch,
                       "ro": not is_torch and not value.flags.writeable,
                       "b64": base64.b64encode(array.tobytes()).decode("ascii")}}
    name = str(len(tensors))
    tensors[name] = array
    return {"$T": name} if is_torch else {"$N": name, "ro": not value.flags.writeable}


def _inline_array(spec: Any) -> torch.Tensor | np.ndarray:
    """An array that travelled in a request: only numbers, and exactly as many bytes as its shape needs."""
    try:
        if spec["dtype"] not in INLINE_DTYPES:
            raise ValueError(spec["dtype"])
        dtype, shape = np.dtype(spec["dtype"]), tuple(int(n) for n in spec["shape"])
        raw = base64.b64decode(spec["b64"], validate=True)
    except (KeyError, TypeError, ValueError) as err:
        raise WireError("An array in the request is not in this format.") from err
    if any(n < 0 for n in shape) or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(raw):
        raise WireError("An array in the request does not hold what its shape says.")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if spec.get("torch"):
        return torch.from_numpy(array)
    array.setflags(write=not spec.get("ro", False))
    return array


def unpack(value: Any, tensors: dict[str, np.ndarray] | None = None) -> Any:
    """The inverse of :func:`pack`."""
    if isinstance(value, list):
        return [unpack(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "$b":
            return base64.b64decode(inner)
        if tag == "$t":
            return tuple(unpack(v, tensors) for v in inner)
        if tag in ("$s", "$fs"):
            items = [unpack(v, tensors) for v in inner]
            return set(items) if tag == "$s" else frozenset(items)
        if tag == "$d":
            return {unpack(k, tensors): unpack(v, tensors) for k, v in inner}
        if tag == "$T":
            return torch.from_numpy(_array(inner, tensors))
        if tag == "$A":
            return _inline_array(inner)
    if "$N" in value:
        array = _array(value["$N"], tensors)
        array.setflags(write=not value.get("ro", False))
        return array
    if "$c" in value:
        cls = _dataclass_named(value["$c"])
        return cls(**{k: unpack(v, tensors) for k, v in value["f"].items()})
    raise WireError(f"Unknown value on the wire: {sorted(value)[:3]}")


def _array(name: str, tensors: dict[str, np.ndarray] | None) -> np.ndarray:
    if tensors is None or name not in tensors:
        raise WireError(f"The result names an array '{name}' it does not hold.")
    return tensors[name]


def _dataclass_named(path: str) -> type:
    """This library's dataclass at ``module:Qualname``; anything else is refused."""
    module, _, qualname = path.partition(":")
    if not module.startswith(OWN_PACKAGE) or not qualname or "." in qualname:
        raise WireError(f"'{path}' may not travel: only the library's own results do.")
    try:
        cls = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError) as err:
        raise WireError(f"'{path}' is not a class of this library.") from err
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise WireError(f"'{path}' is not a result class.")
    return cls


# ---------------------------------------------------------------- requests


def encode_request(request: dict[str, Any]) -> bytes:
    """A request as UTF-8 JSON (plain values only: :func:`pack` without arrays)."""
    return json.dumps(pack(request), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_request(body: bytes) -> dict[str, Any]:
    """Read a request body; a malformed or oversized one raises :class:`WireError`."""
    if len(body) > MAX_REQUEST_BYTES:
        raise WireError(f"The request is {len(body):,} bytes; at most {MAX_REQUEST_BYTES:,} are read.")
    try:
        request = unpack(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError) as err:
        raise WireError(f"The request is not valid JSON ({err}).") from err
    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        raise WireError("The request names no operation.")
    return request


# ---------------------------------------------------------------- results


def encode_result(value: Any, request_id: str = "") -> bytes:
    """``value`` as one safetensors file: its arrays raw, the rest as JSON in the metadata."""
    tensors: dict[str, np.ndarray] = {}
    structure = pack(value, tensors)
    meta = {"json": json.dumps(structure, ensure_ascii=False), "request_id": request_id}
    return st_save(tensors, metadata=meta)


def decode_result(body: bytes) -> tuple[Any, str]:
    """The value a result holds and its request id."""
    meta = _metadata(body)
    try:
        tensors = st_load(body)
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type
        raise WireError(f"The result's arrays could not be read ({err}).") from err
    return unpack(json.loads(meta["json"]), tensors), meta.get("request_id", "")


def _metadata(body: bytes) -> dict[str, str]:
    if len(body) < 8:
        raise WireError("The result is empty.")
    (size,) = struct.unpack("<Q", body[:8])
    if size > len(body) - 8:
        raise WireError("The result is cut short.")
    try:
        meta = json.loads(body[8:8 + size]).get("__metadata__") or {}
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WireError("The result's header is not JSON.") from err
    if "json" not in meta:
        raise WireError("The result holds no value.")
    return meta
