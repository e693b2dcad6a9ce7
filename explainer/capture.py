"""What the pass keeps, captured by hooks on the model's own modules, and the hooks that switch
heads or MLPs off for one pass.

:func:`hooked` registers every hook for one batched pass and removes them in ``finally``; each
hook records only calls made by the thread that runs the pass, so sessions sharing the model
never mix their captures. Besides the residual stream, the pass measures a few numbers per
layer that whole-model views need (what each sublayer adds, how strongly each MLP neuron
fires), so those views never recompute the blocks.
"""
from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any, Callable

import torch

from explainer.devices import to_device
from explainer.models import LoadedModel

Progress = Callable[[float, str], None]
Ablation = tuple[frozenset, frozenset]
BATCHED_TOKENS = 4096             # on a GPU, passes of at most this many (padded) tokens reduce at the end
BATCHED_ON = ("cuda",)            # device types where captures are batched (tests add the CPU)


class Recorder:
    """The residual stream of one batched pass, and small per-layer summaries, filled by the hooks
    of one thread. ``lengths`` are the prompts' real lengths (the rest of each row is padding).

    Everything is written on the model's device with device-side copies and reductions: no hook
    reads a value back to the host, so on a GPU the pass runs without a synchronisation. On a GPU a
    pass of up to :data:`BATCHED_TOKENS` tokens is *batched*: the hooks only keep each block's
    tensors and :meth:`finish` reduces them all at once after the pass (a handful of kernels instead
    of six per block; a launch-bound GPU pays per kernel), at the cost of holding them meanwhile.
    """

    def __init__(self, model: LoadedModel, lengths: list[int], owner: int) -> None:
        self.owner = owner
        self.n_layers = model.n_layers
        self.lengths = lengths
        self.valid: torch.Tensor | None = None   # (B, T) bool on the device: real tokens (a replayed pass)
        self.logits: torch.Tensor | None = None  # (B, V) the model's own, at the last (padded) position
        B, T, n, dev = len(lengths), max(lengths), model.n_layers, model.device
        self.residual = torch.empty(n + 1, B, T, model.d_model, device=dev)    # (n+1, B, T, d)
        self.attn_norms = torch.empty(n, B, T, device=dev)                     # |what attention adds|
        self.mlp_norms = torch.empty(n, B, T, device=dev)                      # |what the MLP adds|
        self.mlp_peak = torch.empty(n, B, model.d_mlp, device=dev)             # signed act at max |act|
        self.mlp_peak_pos = torch.empty(n, B, model.d_mlp, dtype=torch.long, device=dev)
        self.batched = dev.type in BATCHED_ON and B * T <= BATCHED_TOKENS
        self._largest = torch.empty((n,) * self.batched + (B, model.d_mlp), device=dev)   # max |act|, scratch
        self._kept: dict[str, dict[int, torch.Tensor]] = {k: {} for k in ("residual", "attn_norms", "mlp_norms",
                                                                         "mlp_peak")}
        self.got: set[tuple[str, int]] = set()

    def mine(self) -> bool:
        return threading.get_ident() == self.owner

    def put(self, i: int, value: torch.Tensor) -> None:
        if value.shape != self.residual[i].shape:              # copy_ would broadcast silently
            raise RuntimeError(f"Captured residual has shape {tuple(value.shape)}, "
                               f"expected {tuple(self.residual[i].shape)}.")
        if self.batched:
            self._kept["residual"][i] = value
        else:
            self.residual[i].copy_(value)
        self.got.add(("residual", i))

    def put_norms(self, name: str, i: int, added: torch.Tensor) -> None:
        if self.batched:
            self._kept[name][i] = added
        else:
            torch.linalg.vector_norm(added.float(), dim=-1, out=getattr(self, name)[i])  # (B, T), written in place
        self.got.add((name, i))

    def put_mlp_peaks(self, i: int, act: torch.Tensor) -> None:
        """Per prompt, each neuron's largest |activation| over its real tokens: (B, d_mlp).

        ``max`` gives the first position of the largest value, as ``argmax`` does, and is several
        times faster on a CPU for short texts. Prompts of one length (one prompt alone) take one call.
        """
        if self.batched:
            self._kept["mlp_peak"][i] = act
        elif self.valid is not None:                                        # lengths known on the device only
            self._peaks(i, slice(None), act, self.valid)
        elif min(self.lengths) == act.shape[1]:
            self._peaks(i, slice(None), act)                                     # (B, T, d_mlp) at once
        else:
            for b, n in enumerate(self.lengths):
                self._peaks(i, slice(b, b + 1), act[b:b + 1, :n])
        self.got.add(("mlp_peak", i))

    def _peaks(self, i: int, prompts: slice, act: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        where = self.mlp_peak_pos[i, prompts]                                    # (b, d_mlp), written in place
        size = act.abs() if valid is None else act.abs().masked_fill_(~valid[:, :, None], -1.0)   # padding never wins
        torch.max(size, dim=1, out=(self._largest[prompts], where))              # first position of max |act|
        torch.gather(act, 1, where[:, None], out=self.mlp_peak[i, prompts][:, None])   # (b, 1, d_mlp) signed

    def finish(self) -> None:
        """After the pass: a batched recorder reduces what its hooks kept, every block at once."""
        if not self.batched or not self._kept["residual"]:
            return
        kept = {k: [v[i] for i in sorted(v)] for k, v in self._kept.items()}
        self._kept = {k: {} for k in self._kept}
        with torch.inference_mode():
            torch.stack(kept["residual"], out=self.residual)                               # (n+1, B, T, d)
            for name in ("attn_norms", "mlp_norms"):
                torch.linalg.vector_norm(torch.stack(kept[name]).float(), dim=-1, out=getattr(self, name))  # (n, B, T)
            acts = torch.stack(kept["mlp_peak"])                                           # (n, B, T, d_mlp)
            size = acts.abs()
            valid = self.valid if self.valid is not None else self._real_tokens(acts.device)
            if valid is not None:
                size.masked_fill_(~valid[None, :, :, None], -1.0)                          # padding never wins
            torch.max(size, dim=2, out=(self._largest, self.mlp_peak_pos))                 # (n, B, d_mlp)
            torch.gather(acts, 2, self.mlp_peak_pos[:, :, None], out=self.mlp_peak[:, :, None])

    def _real_tokens(self, device: torch.device) -> torch.Tensor | None:
        """(B, T) True on the prompts' real tokens; None when no prompt is padded."""
        T = max(self.lengths)
        if min(self.lengths) == T:
            return None
        return to_device(torch.arange(T)[None, :] < torch.tensor(self.lengths)[:, None], device)

    def complete(self) -> bool:
        n = self.n_layers
        need = {("residual", i) for i in range(n + 1)}
        need |= {(k, i) for k in ("attn_norms", "mlp_norms", "mlp_peak") for i in range(n)}
        return need <= self.got

    def snapshot(self, lengths: list[int]) -> "Recorder":
        """A copy holding its own buffers (the first ``len(lengths)`` prompts), for a replayed pass whose
        buffers the next replay overwrites."""
        out = copy.copy(self)
        out.lengths, B = list(lengths), len(lengths)
        for name in ("residual", "attn_norms", "mlp_norms", "mlp_peak", "mlp_peak_pos"):
            setattr(out, name, getattr(self, name)[:, :B].clone())
        return out

    def summary(self, b: int) -> dict[str, torch.Tensor]:
        n = self.lengths[b]
        return {"attn_norms": owned(self.attn_norms[:, b, :n]), "mlp_norms": owned(self.mlp_norms[:, b, :n]),
                "mlp_peak": owned(self.mlp_peak[:, b]), "mlp_peak_pos": self.mlp_peak_pos[:, b].clone()}


def _first_tensor(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


@contextlib.contextmanager
def hooked(model: LoadedModel, lengths: list[int], ablation: Ablation,
           progress: Progress | None, recorder: Recorder | None = None) -> Iterator[Recorder]:
    """Register capture (and ablation) hooks; always remove them, even if the forward raises.
    ``recorder``: fill this one (a captured graph's static buffers) instead of a new one."""
    arch, hf = model.arch, model.hf_model
    rec = recorder or Recorder(model, lengths, threading.get_ident())
    heads, mlps = ablation
    handles: list[Any] = []

    def block_in(i: int):
        def hook(module, args, kwargs):
            if rec.mine():
                rec.put(i, _first_tensor(args, kwargs))           # (B, T, d)
                if progress is not None and i:
                    progress(i / (model.n_layers + 1), f"{i}/{model.n_layers}")
        return hook

    def added(name: str, i: int):
        def hook(module, args, output):
            if rec.mine():
                rec.put_norms(name, i, output[0] if isinstance(output, tuple) else output)
        return hook

    def mlp_act(i: int):
        def hook(module, args):
            if rec.mine():
                rec.put_mlp_peaks(i, args[0])                     # (B, T, d_mlp)
        return hook

    try:
        for i, block in enumerate(arch.blocks(hf)):
            handles.append(block.register_forward_pre_hook(block_in(i), with_kwargs=True))
            handles.extend(_ablation_hooks(model, block, i, rec, heads, mlps))   # before the captures below
            handles.append(arch.attn_added(block).register_forward_hook(added("attn_norms", i)))
            handles.append(arch.mlp_added(block).register_forward_hook(added("mlp_norms", i)))
            handles.append(arch.mlp_down(block).register_forward_pre_hook(mlp_act(i)))
        handles.append(arch.final_norm(hf).register_forward_pre_hook(block_in(model.n_layers), with_kwargs=True))
        yield rec
        rec.finish()                                               # after a pass that did not raise
    finally:
        for handle in handles:
            handle.remove()


def _ablation_hooks(model: LoadedModel, block, i: int, rec: Recorder, heads: frozenset,
                    mlps: frozenset) -> list[Any]:
    """Zero switched-off heads before the output projection, and what a switched-off MLP adds."""
    arch, hd = model.arch, model.head_dim
    handles = []
    off = sorted(h for layer, h in heads if layer == i)
    if off:
        def zero_heads(module, args):
            if rec.mine():
                x = args[0].clone()                               # (B, T, H*hd), heads side by side
                for h in off:
                    x[..., h * hd:(h + 1) * hd] = 0
                return (x, *args[1:])
        handles.append(arch.attn_out_proj(block).register_forward_pre_hook(zero_heads))
    if i in mlps:
        def zero_mlp(module, args, output):
            if rec.mine():
                return torch.zeros_like(output)                   # MLP switched off
        handles.append(arch.mlp_added(block).register_forward_hook(zero_mlp))
    return handles


def owned(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a contiguous float32 tensor of its own, on the device it is on (no copy when it already is one)."""
    if t.dtype == torch.float32 and t.is_contiguous() and t.storage_offset() == 0 \
            and t.untyped_storage().nbytes() == t.numel() * 4:
        return t
    return t.detach().to(torch.float32).clone(memory_format=torch.contiguous_format)


class ThreadHooks:
    """Hooks on the shared model for passes made by one thread (see :func:`thread_hooks`).

    Each hook acts only when the thread that registered it calls the module, like the capture
    hooks above, so a session that runs the model meanwhile without the lock (input attribution)
    never sees them. A hook returns what a PyTorch hook returns: None, or a replacement.
    """

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        self.handles: list[Any] = []

    def mine(self) -> bool:
        return threading.get_ident() == self.owner

    def before(self, module: torch.nn.Module, fn: Callable[..., Any], with_kwargs: bool = False) -> None:
        """``fn(module, args[, kwargs])`` before ``module`` runs (a forward pre-hook)."""
        self.handles.append(module.register_forward_pre_hook(
            lambda *a: fn(*a) if self.mine() else None, with_kwargs=with_kwargs))

    def after(self, module: torch.nn.Module, fn: Callable[..., Any]) -> None:
        """``fn(module, args, output)`` after ``module`` ran (a forward hook)."""
        self.handles.append(module.register_forward_hook(lambda *a: fn(*a) if self.mine() else None))


@contextlib.contextmanager
def thread_hooks() -> Iterator[ThreadHooks]:
    """Hooks for this thread's passes, all removed in ``finally`` (even when the pass raises).
    Hold ``model.lock`` around it and the passes, as :func:`hooked` is held by the tracer."""
    hooks = ThreadHooks()
    try:
        yield hooks
    finally:
        for handle in hooks.handles:
            handle.remove()
