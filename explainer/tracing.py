"""One forward pass at plain-forward speed → a :class:`Trace` that keeps the residual stream.

The pass runs the model as it is (its fastest attention, sdpa), with hooks that copy the
residual entering every block and leaving the last one, and asks the model for the last
position's logits only. Everything else is recomputed on demand from that stream
(:mod:`explainer.blocks`). Hooks are registered inside :func:`_hooked` (removed in
``finally``), under the model's lock, and record only calls from the running thread, so the
shared model is never modified and concurrent sessions never mix their captures.

Traces asked for at the same moment by different sessions run together as one right-padded
batch (:class:`_Batcher`): with causal attention a real token never reads the padding after
it, so every prompt's numbers are those of the prompt traced alone.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from explainer.arch import layer_types, rope_theta, sliding_window, unembed
from explainer.budget import TooLarge, budget_bytes, check_fits, human
from explainer.models import LoadedModel
from explainer.tokens import legible, token_bytes
from explainer.trace import RotaryInfo, Trace

DEFAULT_MAX_TOKENS = 1024
MAX_TRACE_TOKENS = 8192           # the longest text any model is traced on (SmolLM2's whole context)
MAX_BATCH_TOKENS = 4096           # padded tokens in one batch of concurrent traces
MAX_BATCH = 32
Progress = Callable[[float, str], None]
Ablation = tuple[frozenset, frozenset]


def tokenize(model: LoadedModel, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[list[int], bool]:
    """The ids the model will see for ``text`` (at most ``max_tokens``) and whether it was cut."""
    if not isinstance(text, str):
        raise TypeError(f"The prompt must be text (str), not {type(text).__name__}.")
    if not text.strip():
        raise ValueError("The prompt is empty. Type a sentence for the model to read.")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive whole number, not {max_tokens!r}.")
    max_tokens = min(max_tokens, model.context_length, MAX_TRACE_TOKENS)
    char_cap = max(max_tokens * 64, 4096)     # no need to tokenize a whole book to keep its start
    clipped = text[:char_cap]
    with model.lock:                          # fast tokenizers are not safe to share across threads
        ids = model.tokenizer(clipped, add_special_tokens=True)["input_ids"]
    if not ids:
        raise ValueError("The prompt produced no tokens. Type some words for the model to read.")
    truncated = len(ids) > max_tokens or len(clipped) < len(text)
    return ids[:max_tokens], truncated


def estimate_bytes(model: LoadedModel, n_tokens: int, batch: int = 1) -> int:
    """Peak bytes a trace of ``batch`` prompts of ``n_tokens`` takes: what it keeps plus the pass.

    The pass holds a few (T, d) and (T, d_mlp) activations of one block at a time; a layer that
    reads a sliding window needs a (T, T) mask, and attention math that falls back from the
    fused kernel holds (H, T, T) scores.
    """
    T, B = n_tokens, batch
    kept = 4 * B * ((model.n_layers + 1) * T * model.d_model + model.vocab_size)
    block = 4 * B * T * (8 * model.d_model + 4 * model.d_mlp + 3 * model.n_heads * model.head_dim)
    windowed = any(w is not None and w < T for w in _windows(model))
    scores = 4 * B * model.n_heads * T * T if windowed else 0
    return kept + block + scores + B * T * T


def trace(
    model: LoadedModel,
    text: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    ablate_heads: Iterable[tuple[int, int]] = (),
    ablate_mlps: Iterable[int] = (),
    progress: Progress | None = None,
) -> Trace:
    """Run ``text`` through ``model`` once and keep its residual stream.

    ``ablate_heads`` (layer, head) pairs and ``ablate_mlps`` layers are switched off for this
    pass only (their output is zeroed); the shared model is left as it was. ``progress(f, msg)``
    is called after every block when the pass runs on this thread. A text too long for the
    memory budget raises :class:`explainer.budget.TooLarge` before anything runs.
    """
    ids, truncated = tokenize(model, text, max_tokens)
    ablation = (frozenset((int(l), int(h)) for l, h in ablate_heads), frozenset(int(l) for l in ablate_mlps))
    _check_ablation(model, *ablation)
    need = estimate_bytes(model, len(ids))
    if need > budget_bytes():
        raise TooLarge(f"Tracing {len(ids):,} tokens would need about {human(need)}, more than the "
                       f"{human(budget_bytes())} this server allows for one request. Lower the longest "
                       "text (in tokens) or shorten the text.")
    with model.lock:
        pieces = token_bytes(model.tokenizer, ids)
    request = _Request(text, ids, pieces, truncated, ablation, threading.get_ident(), progress)
    return _batcher(model).submit(model, request)


def trace_many(model: LoadedModel, texts: list[str], max_tokens: int = DEFAULT_MAX_TOKENS) -> list[Trace]:
    """Trace several texts as one padded batch (what concurrent sessions get automatically)."""
    requests = []
    for text in texts:
        ids, truncated = tokenize(model, text, max_tokens)
        with model.lock:
            pieces = token_bytes(model.tokenizer, ids)
        requests.append(_Request(text, ids, pieces, truncated, (frozenset(), frozenset()), threading.get_ident()))
    check_fits(estimate_bytes(model, max(len(r.ids) for r in requests), len(requests)), "this batch of traces")
    with model.lock:
        _run_batch(model, requests)
    return [r.outcome() for r in requests]


def _check_ablation(model: LoadedModel, heads: frozenset, mlps: frozenset) -> None:
    for layer, head in heads:
        if not (0 <= layer < model.n_layers and 0 <= head < model.n_heads):
            raise ValueError(f"There is no head {head} in layer {layer} (layers 0–{model.n_layers - 1}, "
                             f"heads 0–{model.n_heads - 1}).")
    for layer in mlps:
        if not 0 <= layer < model.n_layers:
            raise ValueError(f"There is no MLP layer {layer} (layers 0–{model.n_layers - 1}).")


# ---------------------------------------------------------------- batching concurrent requests


@dataclass(eq=False)
class _Request:
    text: str
    ids: list[int]
    pieces: list[bytes]
    truncated: bool
    ablation: Ablation
    owner: int                                  # the thread that asked
    progress: Progress | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Trace | None = None
    error: BaseException | None = None

    def outcome(self) -> Trace:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class _Batcher:
    """Collects requests that arrive while the model is busy and runs them as one batch.

    Each asking thread queues its request and then waits for the model's lock; whoever gets it
    takes the oldest waiting requests (same ablation, up to :data:`MAX_BATCH_TOKENS` padded tokens
    and the memory budget) and runs them together. A thread whose request another ran just returns.
    """

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._pending: list[_Request] = []

    def submit(self, model: LoadedModel, request: _Request) -> Trace:
        with self._mu:
            self._pending.append(request)
        while not request.done.is_set():
            with model.lock:
                if request.done.is_set():
                    break
                batch = self._take(model)
                if batch:
                    _run_batch(model, batch)
        return request.outcome()

    def _take(self, model: LoadedModel) -> list[_Request]:
        with self._mu:
            if not self._pending:
                return []
            first = self._pending[0]
            batch, longest = [first], len(first.ids)
            for req in self._pending[1:]:
                if req.ablation != first.ablation or len(batch) >= MAX_BATCH:
                    continue
                width = max(longest, len(req.ids))
                if width * (len(batch) + 1) > MAX_BATCH_TOKENS or \
                        estimate_bytes(model, width, len(batch) + 1) > budget_bytes():
                    continue
                batch.append(req)
                longest = width
            self._pending = [r for r in self._pending if r not in batch]
            return batch


_batchers: "weakref.WeakKeyDictionary[LoadedModel, _Batcher]" = weakref.WeakKeyDictionary()
_batchers_lock = threading.Lock()


def _batcher(model: LoadedModel) -> _Batcher:
    with _batchers_lock:
        found = _batchers.get(model)
        if found is None:
            found = _batchers[model] = _Batcher()
        return found


def _run_batch(model: LoadedModel, batch: list[_Request]) -> None:
    """Run ``batch`` (under the model's lock) and hand every request its trace or its error."""
    try:
        traces = _forward(model, batch)
    except Exception as err:                                   # noqa: BLE001 - handed to the askers
        if len(batch) > 1:                                     # one bad request must not sink the others
            for req in batch:
                _run_batch(model, [req])
            return
        batch[0].error = err
        batch[0].done.set()
        return
    for req, tr in zip(batch, traces):
        req.result = tr
        req.done.set()


# ---------------------------------------------------------------- the forward pass


def _forward(model: LoadedModel, batch: list[_Request]) -> list[Trace]:
    B, T = len(batch), max(len(r.ids) for r in batch)
    pad = _pad_id(model)
    input_ids = torch.full((B, T), pad, dtype=torch.long)
    for b, req in enumerate(batch):
        input_ids[b, :len(req.ids)] = torch.tensor(req.ids)
    me = threading.get_ident()
    progress = next((r.progress for r in batch if r.progress is not None and r.owner == me), None)
    with _hooked(model, [len(r.ids) for r in batch], batch[0].ablation, progress) as rec, torch.inference_mode():
        out = model.hf_model(input_ids=input_ids.to(model.device), use_cache=False, logits_to_keep=1)
        logits = out.logits[:, -1].float()                      # (B, V) at the last (padded) position
        del out
    if not rec.complete():
        raise RuntimeError("A stage of the forward pass was not captured; the model's structure "
                           "does not match its architecture description.")
    if B > 1:                                                   # each prompt's own last position
        with torch.inference_mode():
            norm = model.arch.final_norm(model.hf_model)
            last = torch.stack([rec.residual[-1, b, len(r.ids) - 1] for b, r in enumerate(batch)])  # (B, d)
            logits = unembed(model.hf_model, norm(last)).float()                                    # (B, V)
    return [_build(model, req, rec.residual[:, b, :len(req.ids)], logits[b], rec.summary(b))
            for b, req in enumerate(batch)]


def _pad_id(model: LoadedModel) -> int:
    tok = model.tokenizer
    for candidate in (getattr(tok, "pad_token_id", None), getattr(tok, "eos_token_id", None)):
        if isinstance(candidate, int) and 0 <= candidate < model.vocab_size:
            return candidate
    return 0


class _Recorder:
    """The residual stream of one batched pass, and small per-layer summaries, filled by the hooks
    of one thread. ``lengths`` are the prompts' real lengths (the rest of each row is padding)."""

    def __init__(self, model: LoadedModel, lengths: list[int], owner: int) -> None:
        self.owner = owner
        self.n_layers = model.n_layers
        self.lengths = lengths
        B, T, n, dev = len(lengths), max(lengths), model.n_layers, model.device
        self.residual = torch.empty(n + 1, B, T, model.d_model, device=dev)    # (n+1, B, T, d)
        self.attn_norms = torch.empty(n, B, T, device=dev)                     # |what attention adds|
        self.mlp_norms = torch.empty(n, B, T, device=dev)                      # |what the MLP adds|
        self.mlp_peak = torch.empty(n, B, model.d_mlp, device=dev)             # signed act at max |act|
        self.mlp_peak_pos = torch.empty(n, B, model.d_mlp, dtype=torch.long, device=dev)
        self.got: set[tuple[str, int]] = set()

    def mine(self) -> bool:
        return threading.get_ident() == self.owner

    def put(self, i: int, value: torch.Tensor) -> None:
        if value.shape != self.residual[i].shape:              # copy_ would broadcast silently
            raise RuntimeError(f"Captured residual has shape {tuple(value.shape)}, "
                               f"expected {tuple(self.residual[i].shape)}.")
        self.residual[i].copy_(value)
        self.got.add(("residual", i))

    def put_norms(self, name: str, i: int, added: torch.Tensor) -> None:
        getattr(self, name)[i].copy_(torch.linalg.vector_norm(added.float(), dim=-1))   # (B, T)
        self.got.add((name, i))

    def put_mlp_peaks(self, i: int, act: torch.Tensor) -> None:
        """Per prompt, each neuron's largest |activation| over its real tokens: (B, d_mlp)."""
        for b, n in enumerate(self.lengths):
            where = act[b, :n].abs().argmax(dim=0)                              # (d_mlp,)
            self.mlp_peak_pos[i, b] = where
            self.mlp_peak[i, b] = act[b, :n].gather(0, where[None])[0]
        self.got.add(("mlp_peak", i))

    def complete(self) -> bool:
        n = self.n_layers
        need = {("residual", i) for i in range(n + 1)}
        need |= {(k, i) for k in ("attn_norms", "mlp_norms", "mlp_peak") for i in range(n)}
        return need <= self.got

    def summary(self, b: int) -> dict[str, torch.Tensor]:
        n = self.lengths[b]
        return {"attn_norms": _owned(self.attn_norms[:, b, :n]), "mlp_norms": _owned(self.mlp_norms[:, b, :n]),
                "mlp_peak": _owned(self.mlp_peak[:, b]),
                "mlp_peak_pos": self.mlp_peak_pos[:, b].to("cpu").clone()}


def _first_tensor(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


@contextlib.contextmanager
def _hooked(model: LoadedModel, lengths: list[int], ablation: Ablation,
            progress: Progress | None) -> Iterator[_Recorder]:
    """Register capture (and ablation) hooks; always remove them, even if the forward raises."""
    arch, hf = model.arch, model.hf_model
    rec = _Recorder(model, lengths, threading.get_ident())
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
    finally:
        for handle in handles:
            handle.remove()


def _ablation_hooks(model: LoadedModel, block, i: int, rec: _Recorder, heads: frozenset,
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


# ---------------------------------------------------------------- building the Trace


def _build(model: LoadedModel, req: _Request, residual: torch.Tensor, last_logits: torch.Tensor,
           summary: dict[str, torch.Tensor]) -> Trace:
    rotaries = rotary_infos(model)
    return Trace(
        model_name=model.name,
        text=req.text,
        token_ids=torch.tensor(req.ids, dtype=torch.long),
        tokens=tuple(legible(p) for p in req.pieces),
        token_bytes=tuple(req.pieces),
        truncated=req.truncated,
        arch=model.arch.family,
        n_layers=model.n_layers,
        n_heads=model.n_heads,
        d_model=model.d_model,
        d_mlp=model.d_mlp,
        vocab_size=model.vocab_size,
        precision="float32",
        rotary=rotaries[0] if rotaries else None,
        rotaries=rotaries,
        windows=_windows(model),
        ablated_heads=req.ablation[0],
        ablated_mlps=req.ablation[1],
        _residual=_owned(residual),                              # (n+1, T, d)
        _last_logits=_owned(last_logits),                        # (V,)
        _summary=summary,
        _model=model,
    )


def _owned(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a contiguous float32 CPU tensor of its own (no copy when it already is one)."""
    if t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() and t.storage_offset() == 0 \
            and t.untyped_storage().nbytes() == t.numel() * 4:
        return t
    return t.detach().to("cpu", torch.float32).clone(memory_format=torch.contiguous_format)


def _windows(model: LoadedModel) -> tuple[int | None, ...]:
    return tuple(sliding_window(model.hf_model, model.arch, l) for l in range(model.n_layers))


def rotary_infos(model: LoadedModel) -> tuple[RotaryInfo, ...]:
    """One :class:`RotaryInfo` per rotary base the model uses, with the layers that use it."""
    if not model.arch.rotary:
        return ()
    rotary_emb = getattr(getattr(model.hf_model, "model", None), "rotary_emb", None)
    kinds = layer_types(model.hf_model)
    infos: dict[str, RotaryInfo] = {}
    for layer, kind in enumerate(kinds):
        if kind not in infos:
            theta = rope_theta(model.hf_model, layer) or 10000.0
            inv = getattr(rotary_emb, f"{kind}_inv_freq", None)
            if inv is None:
                inv = getattr(rotary_emb, "inv_freq", None)
            if inv is None:
                inv = 1.0 / theta ** (torch.arange(0, model.head_dim, 2).float() / model.head_dim)
            infos[kind] = RotaryInfo(theta, model.head_dim, inv.detach().float().cpu().clone(), ())
        info = infos[kind]
        infos[kind] = RotaryInfo(info.theta, info.head_dim, info.inv_freq, info.layers + (layer,))
    return tuple(infos.values())
