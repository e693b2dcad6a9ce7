"""One forward pass at plain-forward speed → a :class:`Trace` that keeps the residual stream.

The pass runs the model as it is (its fastest attention, sdpa), with hooks that copy the
residual entering every block and leaving the last one (:mod:`explainer.capture`), and asks
the model for the last position's logits only. Everything else is recomputed on demand from
that stream (:mod:`explainer.blocks`). The pass runs under the model's lock; its hooks are
removed in ``finally`` and record only the running thread's calls, so the shared model is
never modified and concurrent sessions never mix their captures.

Traces asked for at the same moment by different sessions run together as one right-padded
batch (:class:`_Batcher`): with causal attention a real token never reads the padding after
it, so every prompt's numbers are those of the prompt traced alone.
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from explainer import graphs
from explainer.arch import unembed
from explainer.budget import TooLarge, budget_bytes, check_fits, most_that_fit
from explainer.capture import BATCHED_ON, BATCHED_TOKENS, Ablation, Progress, Recorder, hooked, owned
from explainer.devices import to_device
from explainer.models import LoadedModel
from explainer.numbers import human_bytes
from explainer.serving import remote
from explainer.token_text import TokenText
from explainer.trace import Trace
from explainer.trace_facts import facts

DEFAULT_MAX_TOKENS = 1024
MAX_TRACE_TOKENS = 32_768         # the longest text any model is traced on (Gemma 3's whole context);
                                  # below it, each model's own context and the memory budget decide
MAX_BATCH_TOKENS = 4096           # padded tokens in one batch of concurrent traces
MAX_BATCH = 32
TOKENS_PAST_THE_CUT = 16          # a long text is cut into tokens only this far past the kept ones


def tokenize(model: LoadedModel, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[list[int], bool]:
    """The ids the model will see for ``text`` (at most ``max_tokens``) and whether it was cut."""
    if not isinstance(text, str):
        raise TypeError(f"The prompt must be text (str), not {type(text).__name__}.")
    if not text.strip():
        raise ValueError("The prompt is empty. Type a sentence for the model to read.")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive whole number, not {max_tokens!r}.")
    max_tokens = min(max_tokens, model.context_length, MAX_TRACE_TOKENS)
    ids, read = _leading_ids(model, text, max_tokens)
    if not ids:
        raise ValueError("The prompt produced no tokens. Type some words for the model to read.")
    truncated = len(ids) > max_tokens or read < len(text)
    return ids[:max_tokens], truncated


def _leading_ids(model: LoadedModel, text: str, max_tokens: int) -> tuple[list[int], int]:
    """The ids of the start of ``text`` (its first ``max_tokens`` at least) and how many characters were
    read: growing prefixes (8 characters per wanted token, ×4 each round, at most max(64 per token, 4,096))
    until one holds :data:`TOKENS_PAST_THE_CUT` tokens past the kept ones, which its end cannot change."""
    cap = min(len(text), max(max_tokens * 64, 4096))
    size = min(cap, max(max_tokens * 8, 256))
    while True:
        with model.tokenizer_lock:                      # fast tokenizers are not safe to share across threads
            ids = model.tokenizer(text[:size], add_special_tokens=True)["input_ids"]
        if size >= cap or len(ids) > max_tokens + TOKENS_PAST_THE_CUT:
            return ids, size
        size = min(cap, size * 4)


def estimate_bytes(model: LoadedModel, n_tokens: int, batch: int = 1) -> int:
    """Peak bytes a trace of ``batch`` prompts of ``n_tokens`` takes: what it keeps plus the pass.

    The pass holds a few (T, d) and (T, d_mlp) activations of one block at a time; a layer that
    reads a sliding window needs a (T, T) mask, and attention math that falls back from the
    fused kernel holds (H, T, T) scores. On a GPU a short pass holds every block's captures until
    it reduces them at once (:class:`explainer.capture.Recorder`).
    """
    T, B = n_tokens, batch
    kept = 4 * B * ((model.n_layers + 1) * T * model.d_model + model.vocab_size)
    block = 4 * B * T * (8 * model.d_model + 4 * model.d_mlp + 3 * model.n_heads * model.head_dim)
    windowed = any(w is not None and w < T for w in facts(model)[0])
    scores = 4 * B * model.n_heads * T * T if windowed else 0
    batched = model.device.type in BATCHED_ON and B * T <= BATCHED_TOKENS      # captures held, then stacked
    held = 4 * B * T * model.n_layers * 3 * (model.d_model + model.d_mlp) if batched else 0
    return kept + block + scores + held + B * T * T


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
    check_trace_fits(model, len(ids))
    request = _Request(text, ids, truncated, ablation, threading.get_ident(), progress)
    if remote.goes_remote(model):                               # the forward pass on the cluster
        got = remote.request(model, "trace", token_ids=ids, ablate_heads=sorted(ablation[0]),
                             ablate_mlps=sorted(ablation[1]))
        return _build(model, request, got["residual"], got["last_logits"], got["summary"])
    return _batcher(model).submit(model, request)


def check_trace_fits(model: LoadedModel, n_tokens: int) -> None:
    """Raise :class:`TooLarge` (saying how many tokens would fit) when tracing ``n_tokens`` would
    exceed the memory budget of the model's device (its GPU's free memory; the host's on a CPU)."""
    need, limit = estimate_bytes(model, n_tokens), budget_bytes(model.device)
    if need <= limit:
        return
    fits = most_that_fit(lambda n: estimate_bytes(model, n), limit, n_tokens)
    raise TooLarge(f"Tracing {n_tokens:,} tokens would need about {human_bytes(need)}, more than the "
                   f"{human_bytes(limit)} this server allows for one request; up to {fits:,} tokens fit. Lower the "
                   "longest text (in tokens) or shorten the text.", need, limit, n_tokens, fits)


def trace_many(model: LoadedModel, texts: list[str], max_tokens: int = DEFAULT_MAX_TOKENS) -> list[Trace]:
    """Trace several texts as one padded batch (what concurrent sessions get automatically)."""
    requests = []
    for text in texts:
        ids, truncated = tokenize(model, text, max_tokens)
        requests.append(_Request(text, ids, truncated, (frozenset(), frozenset()), threading.get_ident()))
    check_fits(estimate_bytes(model, max(len(r.ids) for r in requests), len(requests)), "this batch of traces",
               model.device)
    with model.lock:
        _run_batch(model, requests)
    return [r.outcome() for r in requests]


def trace_ids(model: LoadedModel, requests: list[tuple[list[int], Ablation]], text: str = "") -> list[Trace | Exception]:
    """Trace token ids as they come (a worker's batch): each checked, then as few right-padded
    batches as the token bound and the budget allow; each request's trace or its own error."""
    asked: list[_Request | Exception] = []
    for ids, ablation in requests:
        try:
            _check_ids(model, ids, ablation)
            asked.append(_Request(text, list(ids), False, ablation, threading.get_ident()))
        except (ValueError, TypeError) as err:
            asked.append(err)
    pending = [r for r in asked if isinstance(r, _Request)]
    with model.lock:
        while pending:
            batch = take_batch(model, pending)
            pending = [r for r in pending if r not in batch]
            _run_batch(model, batch)
    return [r if isinstance(r, Exception) else r.error or r.result for r in asked]


def _check_ids(model: LoadedModel, ids: list[int], ablation: Ablation) -> None:
    longest = min(model.context_length, MAX_TRACE_TOKENS)
    if not 1 <= len(ids) <= longest or any(not isinstance(i, int) or not 0 <= i < model.vocab_size for i in ids):
        raise ValueError(f"A trace needs 1 to {longest:,} token ids of this model's vocabulary.")
    _check_ablation(model, *ablation)
    check_fits(estimate_bytes(model, len(ids)), f"tracing {len(ids):,} tokens", model.device)


def _check_ablation(model: LoadedModel, heads: frozenset, mlps: frozenset) -> None:
    model.shape.check_heads(heads)
    model.shape.check_layers(mlps, "MLP layer")


# ---------------------------------------------------------------- batching concurrent requests


@dataclass(eq=False)
class _Request:
    text: str
    ids: list[int]
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
            batch = take_batch(model, self._pending)
            self._pending = [r for r in self._pending if r not in batch]
            return batch


def take_batch(model: LoadedModel, pending: list[_Request]) -> list[_Request]:
    """The oldest request and those after it that can share its pass: same ablation, at most
    :data:`MAX_BATCH` of them, :data:`MAX_BATCH_TOKENS` padded tokens and the memory budget."""
    if not pending:
        return []
    first = pending[0]
    batch, longest = [first], len(first.ids)
    limit = budget_bytes(model.device) if len(pending) > 1 else 0
    for req in pending[1:]:
        if req.ablation != first.ablation or len(batch) >= MAX_BATCH:
            continue
        width = max(longest, len(req.ids))
        if width * (len(batch) + 1) > MAX_BATCH_TOKENS or estimate_bytes(model, width, len(batch) + 1) > limit:
            continue
        batch.append(req)
        longest = width
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
        if isinstance(err, torch.OutOfMemoryError):            # the device ran out after all: say it as a refusal
            batch[0].error = TooLarge(f"Tracing {len(batch[0].ids):,} tokens ran out of memory on {model.device}. "
                                      "Lower the longest text (in tokens) or shorten the text.", tokens=len(batch[0].ids))
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
    lengths = [len(r.ids) for r in batch]
    replayed = graphs.run(model, input_ids, lengths, pad) if graphs.wanted(model, lengths, batch[0].ablation) else None
    rec = replayed or _pass(model, batch, input_ids)
    if not rec.complete():
        raise RuntimeError("A stage of the forward pass was not captured; the model's structure "
                           "does not match its architecture description.")
    logits = rec.logits if replayed is None else None
    if B > 1 or replayed is not None:                           # each prompt's own last position
        with torch.inference_mode():
            norm = model.arch.final_norm(model.hf_model)
            last = torch.stack([rec.residual[-1, b, len(r.ids) - 1] for b, r in enumerate(batch)])  # (B, d)
            logits = unembed(model.hf_model, norm(last)).float()                                    # (B, V)
    return [_build(model, req, rec.residual[:, b, :len(req.ids)], logits[b], rec.summary(b))
            for b, req in enumerate(batch)]


def _pass(model: LoadedModel, batch: list[_Request], input_ids: torch.Tensor) -> Recorder:
    """The hooked forward pass of ``input_ids`` (B, T); the Recorder also holds the last position's logits."""
    me = threading.get_ident()
    progress = next((r.progress for r in batch if r.progress is not None and r.owner == me), None)
    with hooked(model, [len(r.ids) for r in batch], batch[0].ablation, progress) as rec, torch.inference_mode():
        # On a GPU nothing below waits for it: the ids go from pinned memory, every capture is a
        # device-side copy, and the trace comes back while its kernels may still be running.
        out = model.hf_model(input_ids=to_device(input_ids, model.device), use_cache=False, logits_to_keep=1)
        rec.logits = out.logits[:, -1].float()                  # (B, V) at the last (padded) position
    return rec


def _pad_id(model: LoadedModel) -> int:
    tok = model.tokenizer
    for candidate in (getattr(tok, "pad_token_id", None), getattr(tok, "eos_token_id", None)):
        if isinstance(candidate, int) and 0 <= candidate < model.vocab_size:
            return candidate
    return 0


# ---------------------------------------------------------------- building the Trace


def _build(model: LoadedModel, req: _Request, residual: torch.Tensor, last_logits: torch.Tensor,
           summary: dict[str, torch.Tensor]) -> Trace:
    """The Trace of one request: its tensors stay on the model's device; its token labels are made
    when first asked for (:class:`explainer.token_text.TokenText`), not on the forward's path."""
    windows, rotaries = facts(model)
    return Trace(
        model_name=model.name,
        text=req.text,
        token_ids=torch.tensor(req.ids, dtype=torch.long),
        _text=TokenText(req.ids, model),
        truncated=req.truncated,
        arch=model.arch.family,
        shape=model.shape,
        precision="float32",
        rotary=rotaries[0] if rotaries else None,
        rotaries=rotaries,
        windows=windows,
        ablated_heads=req.ablation[0],
        ablated_mlps=req.ablation[1],
        _residual=owned(residual),                              # (n+1, T, d) on the model's device
        _last_logits=owned(last_logits),                        # (V,)
        _summary=summary,
        _model=model,
    )
