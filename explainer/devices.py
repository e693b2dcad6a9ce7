"""Where tensors live: on the device that computed them until a result is handed to a figure.

A trace keeps its residual stream on the model's device (a GPU, or the CPU) and everything it
recomputes on demand stays there too. The analysis functions bring only their small results to the
CPU, through :func:`host` — the one crossing, at the figure boundary. Host data that a device
computation needs (token ids, query positions) goes the other way through :func:`to_device`, which
on a GPU copies from pinned memory without waiting for the GPU to finish what it is doing.

On the CPU all of this costs nothing: :func:`host` of a CPU tensor is the tensor itself.
"""
from __future__ import annotations

from typing import Any

import torch


def host(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the CPU (the tensor itself when it is there already): what results hand to figures.

    On a GPU this waits for the work that computes ``t`` — call it once per result, on the small
    tensors a page draws, never inside a loop over layers or rows.
    """
    return t.detach().cpu()


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Host data (ids, positions, masks) on ``device``. On a GPU it is copied from pinned memory
    without a host synchronisation (the copy is queued behind the work already running)."""
    device = torch.device(device)
    if device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def synchronize(device: torch.device | str) -> None:
    """Wait for every queued kernel on ``device`` (timing only; a CPU has nothing queued)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def normalized(device: torch.device | str) -> torch.device:
    """``device`` with its index, as tensors report it (``cuda`` → ``cuda:0``)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def free_bytes(device: torch.device | str) -> int | None:
    """Bytes a new tensor on a GPU can still take: the driver's free memory plus what PyTorch's
    allocator holds reserved but unused. None for the CPU (the host budget decides there)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def on_device(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor in it (a tensor, or a dict of them) moved to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: on_device(v, device) for k, v in value.items()}
    return value
