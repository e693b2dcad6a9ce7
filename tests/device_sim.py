"""A device that is not the host, simulated on the CPU: what a GPU would refuse or wait for, made visible.

Tensors of :class:`OnDevice` say they live on ``cpu:0`` (:data:`SIM`), a device distinct from the host
``cpu``; the model's parameters and buffers are made such tensors by :func:`simulated`, and inside
:func:`placement` a factory or ``.to()`` aimed at :data:`SIM` makes one. Then, as on a GPU:

- ``numpy()`` / ``np.asarray`` of a device tensor raise ``TypeError`` (bring it to the host first);
- an operation mixing a device tensor with a host tensor of more than one element raises;
- reading a value on the host (``item``, ``tolist``, ``float()``, ``bool()``, ``.cpu()`` …) and sending
  host data with a blocking copy (``torch.tensor(..., device=SIM)``, ``.to(SIM)``, indexing with a host
  list or tensor) are allowed but counted in :data:`EVENTS`: each is a host synchronisation on a GPU.
  A copy made by :func:`explainer.devices.to_device` is not counted (on a GPU it goes without waiting).

The numbers are the CPU's, so a result computed "on the device" must equal the one computed on the host.
"""
from __future__ import annotations

import contextlib
import threading
import traceback
from typing import Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

SIM = torch.device("cpu", 0)
_DEVICE = torch._C.TensorBase.__dict__["device"]
_IS_CPU = torch._C.TensorBase.__dict__["is_cpu"]
_CRASH = {"numpy", "__array__"}
_READS = {"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "__complex__", "__format__", "nonzero"}
_INDEXING = {"__getitem__", "__setitem__", "index_put_", "index_put"}
_MIXABLE = _INDEXING | {"copy_", "__repr__", "__format__", "__str__"}


class _Events(threading.local):
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []


EVENTS = _Events()


def _where() -> str:
    """The first frame outside torch and this module: who asked."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if "/torch/" not in frame.filename and not frame.filename.endswith("device_sim.py"):
            return f"{'/'.join(frame.filename.split('/')[-2:])}:{frame.lineno}"
    return "?"


def _from_to_device() -> bool:
    return any(f.name == "to_device" and f.filename.endswith("explainer/devices.py")
               for f in traceback.extract_stack()[-8:])


def _note(kind: str) -> None:
    EVENTS.log.append((kind, _where()))


def _is_sim(dev: object) -> bool:
    if isinstance(dev, str):
        dev = torch.device(dev)
    return isinstance(dev, torch.device) and dev.type == "cpu" and dev.index == 0


def _to_host(args: tuple, kwargs: dict) -> bool:
    """Whether a ``.to(...)`` call aims at the host CPU."""
    dev = kwargs.get("device")
    for a in args[1:]:
        if isinstance(a, (str, torch.device)):
            dev = a
    if dev is None:
        return False
    dev = torch.device(dev) if isinstance(dev, str) else dev
    return dev.type == "cpu" and dev.index is None


def _host_tensors(args: tuple, kwargs: dict, many: bool) -> list[torch.Tensor]:
    flat, _ = tree_flatten((args, kwargs))
    return [t for t in flat if isinstance(t, torch.Tensor) and not isinstance(t, OnDevice)
            and (t.dim() > 0 or not many)]


def _host_index(index: object) -> bool:
    """Whether an index sends host data to the device: a list, or a host tensor of positions or a mask."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, list) or (isinstance(i, torch.Tensor) and not isinstance(i, OnDevice) and i.dim() > 0)
               for i in items)


class OnDevice(torch.Tensor):
    """A tensor on the simulated device (its data are on the CPU; it says it is on :data:`SIM`)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        owner = getattr(func, "__self__", None)
        if owner is _DEVICE:
            return SIM
        if owner is _IS_CPU:
            return False
        name = getattr(func, "__name__", "")
        if name in _CRASH:
            raise TypeError("can't convert a tensor on the simulated device to numpy. Use Tensor.cpu() first.")
        if name in _READS:
            _note(f"read:{name}")
        if name == "cpu" or (name == "to" and _to_host(args, kwargs)):
            _note(f"read:{name}")
            with torch._C.DisableTorchFunctionSubclass():
                plain = args[0].as_subclass(torch.Tensor)
                return func(plain, *args[1:], **kwargs).clone()      # a copy of its own, as from a GPU
        if name in _INDEXING:
            if _host_index(args[1] if len(args) > 1 else None) or \
                    (name == "__setitem__" and _host_tensors(args[2:], kwargs, many=True)):
                _note(f"h2d:{name}")
        elif name not in _MIXABLE:
            for t in _host_tensors(args, kwargs, many=True):
                raise RuntimeError(f"Expected all tensors to be on the same device, but found a host tensor "
                                   f"of shape {tuple(t.shape)} in {name or func} ({_where()})")
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        return torch._tensor._convert(out, cls)


class _Placement(TorchFunctionMode):
    """Factories and ``.to()`` aimed at :data:`SIM` make :class:`OnDevice` tensors."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        aimed = _is_sim(kwargs.get("device")) or (name == "to" and any(_is_sim(a) for a in args[1:]))
        if aimed and (name in ("tensor", "as_tensor") or (name == "to" and not isinstance(args[0], OnDevice))):
            if not kwargs.get("non_blocking") and not _from_to_device():
                _note(f"h2d:{name}")
        out = func(*args, **kwargs)
        if aimed and isinstance(out, torch.Tensor) and not isinstance(out, OnDevice):
            out = out.as_subclass(OnDevice)
        return out


@contextlib.contextmanager
def placement() -> Iterator[list[tuple[str, str]]]:
    """Run with factories aimed at :data:`SIM` placed there; yields the events logged meanwhile."""
    start = len(EVENTS.log)
    seen: list[tuple[str, str]] = []
    with _Placement():
        try:
            yield seen
        finally:
            seen.extend(EVENTS.log[start:])


def simulated(model):
    """``model`` (a LoadedModel on the CPU, not shared) moved onto the simulated device, in place."""
    from dataclasses import replace
    moved: dict[int, torch.nn.Parameter] = {}                 # tied weights stay one parameter
    for module in model.hf_model.modules():
        for key, param in list(module._parameters.items()):
            if param is not None:
                if id(param) not in moved:
                    moved[id(param)] = torch.nn.Parameter(param.data.as_subclass(OnDevice), requires_grad=False)
                module._parameters[key] = moved[id(param)]
        for key, buf in list(module._buffers.items()):
            if buf is not None:
                module._buffers[key] = buf.as_subclass(OnDevice)
    return replace(model, device=SIM)


def on_host(t: torch.Tensor) -> bool:
    return not isinstance(t, OnDevice)
