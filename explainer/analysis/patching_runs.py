"""The runs behind activation patching: the clean and corrupted runs, then batches of patched runs.

Every run is the model's own forward pass, with hooks on its real modules
(:func:`explainer.capture.thread_hooks`: registered under the model's lock, acting only for the
calling thread, removed in ``finally``). What a site is, in hook terms:

- ``resid_pre[l, p]``: the hidden state block ``l`` receives (a pre-hook on the block), at ``p``;
- ``attn_out[l, p]`` / ``mlp_out[l, p]``: the output of :meth:`Architecture.attn_added` /
  :meth:`Architecture.mlp_added` at ``p`` — the attention or MLP itself, or Gemma 3's post-norm
  after it — i.e. exactly what the sublayer adds to the residual stream;
- ``heads[l, h]``: head ``h``'s slice of the input of block ``l``'s attention output projection,
  at every position.

Patched runs are exact and cheap for reasons that change no number. A patch at position ``p``
cannot reach positions before ``p`` (attention is causal), so those positions are the corrupted
run's: the pass reads their keys and values from the model's own cache of the corrupted prefix,
and runs only positions ``p`` … ``T−1``. A run that patches layer ``l`` is the corrupted run below
``l``: the pass starts with the corrupted run alone and each patched run joins it at the block it
patches, as a copy of the corrupted hidden state there (the model's masks and rotary cos/sin, made
for one row, serve every row). And only the metric is read out: the final-normed last position
times the two unembedding rows (the full distribution when asked).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from explainer.budget import budget_bytes, check_fits
from explainer.capture import ThreadHooks, thread_hooks
from explainer.models import LoadedModel

SITES = ("resid_pre", "attn_out", "mlp_out", "heads")
MAX_BATCH_TOKENS = 4096            # patched positions run in one batch (CPU throughput flattens beyond)
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Patch:
    """One patched run: copy the clean run's ``site`` at ``layer`` and ``index`` (a position, or a
    head for ``heads``) into the corrupted run."""

    site: str
    layer: int
    index: int


@dataclass(frozen=True, eq=False)
class Sources:
    """What patched runs copy from the clean run, and both runs' last-position logits."""

    clean: dict[str, torch.Tensor]    # site -> (n_layers, T, d); heads: (n_layers, T, H * head_dim)
    logits: torch.Tensor              # (2, V) float32: clean, corrupted


def estimate_bytes(model: LoadedModel, n_tokens: int, rows: int) -> int:
    """Peak bytes of ``rows`` patched runs of ``n_tokens`` (plus the clean run's activations)."""
    T, n, hd = n_tokens, model.n_layers, model.head_dim
    width = 8 * model.d_model + 4 * model.d_mlp + 3 * model.n_heads * hd
    per_row = 4 * T * (width + model.n_heads * T) + 4 * 2 * n * model.n_kv_heads * hd * T
    kept = 4 * n * T * (3 * model.d_model + model.n_heads * hd) + 8 * model.vocab_size
    return kept + rows * per_row


def rows_per_batch(model: LoadedModel, n_tokens: int, new_tokens: int) -> int:
    """How many patched runs of ``new_tokens`` positions (over ``n_tokens`` in all) go in one batch."""
    by_tokens = max(1, MAX_BATCH_TOKENS // max(1, new_tokens))
    one = estimate_bytes(model, n_tokens, 1) - estimate_bytes(model, n_tokens, 0)
    by_memory = (budget_bytes(model.device) - estimate_bytes(model, n_tokens, 0)) // one
    if by_memory < 1:
        check_fits(estimate_bytes(model, n_tokens, 1), f"patching {n_tokens} tokens", model.device)
    return int(max(1, min(by_tokens, by_memory)))


# ---------------------------------------------------------------- the clean and corrupted runs


def sources(model: LoadedModel, clean_ids: Sequence[int], corrupted_ids: Sequence[int]) -> Sources:
    """Run both prompts as one batch; keep the clean run's activations at every site."""
    arch, n = model.arch, model.n_layers
    x = torch.tensor([list(clean_ids), list(corrupted_ids)], device=model.device)       # (2, T)
    got: dict[str, list] = {site: [None] * n for site in SITES}

    def keep(site: str, layer: int, value: torch.Tensor) -> None:
        got[site][layer] = value[0].detach().clone()                                    # (T, width): clean only

    check_fits(estimate_bytes(model, x.shape[1], 2), f"patching {x.shape[1]} tokens", model.device)
    with model.lock, thread_hooks() as hooks, torch.inference_mode():
        for layer, block in enumerate(arch.blocks(model.hf_model)):
            hooks.before(block, lambda m, a, k, l=layer: keep("resid_pre", l, _hidden(a, k)), with_kwargs=True)
            hooks.after(arch.attn_added(block), lambda m, a, o, l=layer: keep("attn_out", l, _first(o)))
            hooks.after(arch.mlp_added(block), lambda m, a, o, l=layer: keep("mlp_out", l, _first(o)))
            hooks.before(arch.attn_out_proj(block), lambda m, a, l=layer: keep("heads", l, a[0]))
        logits = model.hf_model(input_ids=x, use_cache=False, logits_to_keep=1).logits[:, -1].float()   # (2, V)
    if any(v is None for values in got.values() for v in values):
        raise RuntimeError("A site of the forward pass was not reached; the model's structure does not match "
                           "its architecture description.")
    return Sources({site: torch.stack(values) for site, values in got.items()}, logits)


def _hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _first(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


# ---------------------------------------------------------------- patched runs


def patched(model: LoadedModel, src: Sources, corrupted_ids: Sequence[int], start: int,
            rows: Sequence[Sequence[Patch]], read: torch.Tensor | None) -> torch.Tensor:
    """The corrupted prompt run once per row of patches (a row may patch several cells), as one pass
    of the model under its lock: positions ``start`` … ``T−1`` only (no patch touches one before),
    and each row only from the first layer it patches, where it joins the pass as a copy of the
    corrupted run (which is row 0 of the pass, unpatched).

    ``read`` (k, d[+1]): unembedding rows (:func:`unembedding_rows`) → their logits (R, k);
    None → the full next-token logits (R, V).
    """
    if any(p.index < start for row in rows for p in row if p.site != "heads"):
        raise ValueError("A patched position lies before the first recomputed one.")
    order = sorted(range(len(rows)), key=lambda r: min(p.layer for p in rows[r]))
    rows = [rows[r] for r in order]                                                    # by the layer they join
    joining = [0] * model.n_layers
    for row in rows:
        joining[min(p.layer for p in row)] += 1
    ids = torch.tensor([list(corrupted_ids)], device=model.device)                     # (1, T)
    with model.lock, torch.inference_mode():
        cache = _prefix_cache(model, ids, start, joining)
        with thread_hooks() as hooks:
            _grow(hooks, model, joining)                                               # before the patches
            _install(hooks, model, src, start, rows, first_row=1)
            suffix = dict(input_ids=ids[:, start:], past_key_values=cache, use_cache=cache is not None)
            if read is None:
                out = model.hf_model(**suffix, logits_to_keep=1).logits[1:, -1].float()          # (R, V)
            else:
                h = model.hf_model.base_model(**suffix).last_hidden_state[1:, -1]              # (R, d) normed
                out = _logits(model, h, read)                                                    # (R, k)
    result = torch.empty_like(out)
    result[order] = out                                                                # back in the rows' order
    return result


def _prefix_cache(model: LoadedModel, ids: torch.Tensor, start: int, joining: list[int]):
    """The model's own cache of the corrupted positions before ``start`` (None when 0), each block's
    entry repeated for the rows that run that block (the corrupted row, and those joined so far)."""
    if not start:
        return None
    cache = model.hf_model.base_model(input_ids=ids[:, :start], use_cache=True).past_key_values
    active = 1
    for layer, n in enumerate(joining):
        active += n
        if active > 1:
            cache.layers[layer].batch_repeat_interleave(active)
    return cache


def _grow(hooks: ThreadHooks, model: LoadedModel, joining: list[int]) -> None:
    """At each block where rows join, add them to the pass: copies of row 0 (the corrupted run) as
    the block receives it. Everything else the block gets (masks, rotary cos/sin) has batch 1."""
    for layer, block in enumerate(model.arch.blocks(model.hf_model)):
        if joining[layer]:
            def join(m, args, kwargs, k=joining[layer]):
                x = _hidden(args, kwargs)                                              # (B, T', d)
                x = torch.cat([x, x[:1].expand(k, -1, -1)])                            # (B + k, T', d)
                return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})
            hooks.before(block, join, with_kwargs=True)


def unembedding_rows(model: LoadedModel, ids: Sequence[int]) -> torch.Tensor:
    """The unembedding rows (with their bias, if any, as a last column) of ``ids``: (k, d[+1])."""
    head = model.hf_model.get_output_embeddings()
    with torch.inference_mode():
        rows = head.weight[list(ids)].float()
        if head.bias is not None:
            rows = torch.cat([rows, head.bias[list(ids)].float()[:, None]], dim=1)
    return rows


def _logits(model: LoadedModel, h: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    """Logits of the tokens whose rows are ``read`` (k, d[+1]) from final-normed states h (R, d): (R, k)."""
    h = h.float()
    if read.shape[1] > h.shape[1]:                                                     # a bias column
        h = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
    logits = h @ read.T                                                                # (R, k)
    cap = getattr(model.hf_model.config, "final_logit_softcapping", None)
    return logits if not cap else torch.tanh(logits / cap) * cap


def _install(hooks: ThreadHooks, model: LoadedModel, src: Sources, start: int, rows: Sequence[Sequence[Patch]],
             first_row: int = 0) -> None:
    """One hook per (site, layer) that has patches: copy the clean values into the patches' rows
    (row ``r`` of ``rows`` is row ``first_row + r`` of the pass)."""
    arch, hd = model.arch, model.head_dim
    by_place: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for row, patches in enumerate(rows, start=first_row):
        for p in patches:
            by_place.setdefault((p.site, p.layer), []).append((row, p.index))
    blocks = arch.blocks(model.hf_model)
    for (site, layer), pairs in by_place.items():
        at = torch.tensor([r for r, _ in pairs], device=model.device)
        where = torch.tensor([i for _, i in pairs], device=model.device)
        clean = src.clean[site][layer]                                                 # (T, width)
        block = blocks[layer]
        if site == "resid_pre":
            def pre(m, args, kwargs, at=at, where=where, clean=clean):
                x = _hidden(args, kwargs).clone()                                      # (R, T', d)
                x[at, where - start] = clean[where]
                return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})
            hooks.before(block, pre, with_kwargs=True)
        elif site == "heads":
            def heads(m, args, at=at, where=where, clean=clean):
                x = args[0].clone()                                                    # (R, T', H*hd)
                R, T = x.shape[:2]
                mine = clean[start:].view(T, -1, hd)[:, where]                         # (T', R', hd)
                x.view(R, T, -1, hd)[at, :, where] = mine.transpose(0, 1)            # (R', T', hd)
                return (x, *args[1:])
            hooks.before(arch.attn_out_proj(block), heads)
        else:
            def post(m, args, output, at=at, where=where, clean=clean):
                x = _first(output).clone()                                             # (R, T', d)
                x[at, where - start] = clean[where]
                return (x, *output[1:]) if isinstance(output, tuple) else x
            hooks.after(arch.attn_added(block) if site == "attn_out" else arch.mlp_added(block), post)


def sweep(model: LoadedModel, src: Sources, corrupted_ids: Sequence[int], plan: dict[int, list[Patch]],
          read: torch.Tensor, progress: Progress | None) -> dict[Patch, torch.Tensor]:
    """Every patch of ``plan`` (first recomputed position → patches), in batches: {patch: logits (2,)}.

    ``progress(fraction, message)`` is called after every batch (fraction of the positions to run);
    an exception it raises stops the sweep there (the hooks are gone, the lock free).
    """
    T = len(corrupted_ids)
    total = sum((T - start) * len(group) for start, group in plan.items())
    done, out = 0, {}
    for start, group in sorted(plan.items()):
        size = rows_per_batch(model, T, T - start)
        for first in range(0, len(group), size):
            batch = group[first:first + size]
            for p, value in zip(batch, patched(model, src, corrupted_ids, start, [(p,) for p in batch], read)):
                out[p] = value
            done += (T - start) * len(batch)
            if progress is not None:
                progress(done / max(total, 1), f"{len(out):,}/{sum(map(len, plan.values())):,}")
    return out

