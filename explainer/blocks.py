"""Inside one block, on demand: the block's own modules run again on the residual it read.

A trace keeps only the residual stream (what enters every block, and what leaves the last).
Everything inside a block — queries and keys, attention weights, what attention and the MLP
add, the MLP's hidden activations — is computed here from ``residual[layer]`` with the
block's real modules (norms, projections, the model's own rotary cos/sin, activation), in the
order the model applies them, and in float32 like eager attention:

    h = attn_in_norm(x);  q, k, v = proj(h) (+ q/k norms) (+ RoPE)
    A = softmax(mask(softcap(q·kᵀ · scale)))      # causal, plus a sliding window on local layers
    attn_added = post_norm?(o_proj(A·v))          # Gemma 3 normalises what attention adds
    mid = x + attn_added
    act = mlp hidden(mlp_in_norm(mid));  mlp_added = post_norm?(down(act))
    out = mid + mlp_added                          # equals residual[layer + 1] (checked by tests)

No hooks and no edits to the shared modules: plain module calls under ``inference_mode`` are
safe to run from several sessions at once. Everything is computed, and returned, on the model's
device; positions and head numbers given on the host go there without a host synchronisation
(:func:`explainer.devices.to_device`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from explainer.arch import rotary_cos_sin, sliding_window
from explainer.devices import to_device
from explainer.models import LoadedModel

CHUNK_BYTES = 64 * 2**20          # attention scores computed in row chunks of at most this size


@dataclass(frozen=True)
class QKV:
    """Queries, keys and values of one layer as attention uses them (after q/k norms and RoPE).

    q (H, T, hd); k and v (KV, T, hd); query head ``h`` reads key/value head ``h // group``.
    ``q_unrotated`` and ``k_unrotated`` are the same before RoPE (equal to q and k without rotary positions).
    """

    layer: int
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    q_unrotated: torch.Tensor
    k_unrotated: torch.Tensor
    scale: float                  # q·k is multiplied by this (1/√head_dim, or the model's own)
    softcap: float | None         # Gemma 2-style tanh cap on scores (None: no cap)
    window: int | None            # a query reads only the last ``window`` positions (None: all)
    group: int                    # query heads per key/value head

    @property
    def n_tokens(self) -> int:
        return self.q.shape[1]

    def kv_head(self, head: int) -> int:
        return head // self.group

    def heads_index(self, heads: Sequence[int] | None = None) -> torch.Tensor:
        """Query heads ``heads`` (default all) as a long tensor on the device of q."""
        heads = range(self.q.shape[0]) if heads is None else heads
        return to_device(torch.tensor(list(heads), dtype=torch.long), self.q.device)

    def kv_index(self, heads: Sequence[int] | None = None) -> torch.Tensor:
        """The key/value head each of ``heads`` (default all) reads, as a long tensor on the device of k."""
        heads = range(self.q.shape[0]) if heads is None else heads
        return to_device(torch.tensor([self.kv_head(h) for h in heads], dtype=torch.long), self.k.device)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.q, self.k, self.v, self.q_unrotated, self.k_unrotated))


def _block(model: LoadedModel, layer: int):
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"There is no layer {layer} (layers 0–{model.n_layers - 1}).")
    return model.arch.blocks(model.hf_model)[layer]


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE as Llama and Gemma apply it (halves, not interleaved pairs). x (..., T, hd); cos, sin (T, hd)."""
    half = x.shape[-1] // 2
    rotated_half = torch.cat((-x[..., half:], x[..., :half]), dim=-1)   # (..., T, hd)
    return x * cos + rotated_half * sin


def qkv(model: LoadedModel, layer: int, x: torch.Tensor) -> QKV:
    """Queries, keys and values of ``layer`` from the residual ``x`` (T, d) that enters it."""
    block = _block(model, layer)
    arch, attn, hd = model.arch, model.arch.attention(block), model.head_dim
    x = x.to(model.device, torch.float32)
    T = x.shape[0]
    with torch.inference_mode():
        h = arch.attn_in_norm(block)(x)                                   # (T, d)
        if arch.fused_qkv is not None:
            q, k, v = arch.fused_qkv(attn)(h).split(model.d_model, dim=-1)   # each (T, d)
            q, k, v = (t.view(T, -1, hd).transpose(0, 1) for t in (q, k, v))   # (H, T, hd)
        else:
            q = arch.q_proj(attn)(h).view(T, -1, hd)                      # (T, H, hd)
            k = arch.k_proj(attn)(h).view(T, -1, hd)                      # (T, KV, hd)
            v = arch.v_proj(attn)(h).view(T, -1, hd).transpose(0, 1)      # (KV, T, hd)
            if arch.qk_norm:
                q, k = arch.q_norm(attn)(q), arch.k_norm(attn)(k)         # RMSNorm over each head
            q, k = q.transpose(0, 1), k.transpose(0, 1)                   # (H, T, hd), (KV, T, hd)
        q_unrotated, k_unrotated = q, k
        if arch.rotary:
            cos, sin = rotary_cos_sin(model.hf_model, arch, layer, x, torch.arange(T, device=x.device))
            q, k = rotate(q_unrotated, cos, sin), rotate(k_unrotated, cos, sin)
    cap = getattr(attn, "attn_logit_softcapping", None)
    return QKV(layer, q, k, v, q_unrotated, k_unrotated, float(attn.scaling), float(cap) if cap else None,
               sliding_window(model.hf_model, arch, layer), q.shape[0] // k.shape[0])


def _key_span(parts: QKV, lo: int, hi: int) -> tuple[int, int]:
    """Keys that queries lo..hi-1 may read: from the window's start (or 0) to hi."""
    first = 0 if parts.window is None else max(0, lo - parts.window + 1)
    return first, hi


def weights_for(parts: QKV, rows: torch.Tensor, heads: Sequence[int] | None = None,
                keys: tuple[int, int] | None = None) -> torch.Tensor:
    """Attention weights of query positions ``rows`` (R,) over keys [a, b): (H', R, b - a), float32.

    The same operations as eager attention: scores × scale, the soft cap, −inf where a key is
    after the query or outside its window, softmax in float32.
    """
    heads = list(range(parts.q.shape[0])) if heads is None else list(heads)
    a, b = keys or (0, parts.n_tokens)
    rows_d = to_device(rows, parts.q.device)                               # (R,)
    q = parts.q.index_select(0, parts.heads_index(heads)).index_select(1, rows_d)   # (H', R, hd)
    k = parts.k.index_select(0, parts.kv_index(heads))[:, a:b]             # (H', K, hd)
    with torch.inference_mode():
        scores = torch.matmul(q, k.transpose(1, 2)) * parts.scale          # (H', R, K)
        if parts.softcap is not None:
            scores = torch.tanh(scores / parts.softcap) * parts.softcap
        key_pos = torch.arange(a, b, device=scores.device)[None, :]        # (1, K)
        row_pos = rows_d[:, None]                                          # (R, 1)
        hidden = key_pos > row_pos                                         # the causal mask
        if parts.window is not None:
            hidden |= key_pos <= row_pos - parts.window                    # outside the window
        scores = scores.masked_fill(hidden[None], float("-inf"))
        return torch.softmax(scores, dim=-1, dtype=torch.float32)


def row_chunks(parts: QKV, n_heads: int, rows: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, int, int]]:
    """(rows, first key, last key + 1) in chunks whose scores stay under :data:`CHUNK_BYTES`."""
    T = parts.n_tokens
    rows = torch.arange(T) if rows is None else rows
    size = max(8, CHUNK_BYTES // max(1, 4 * n_heads * T))
    for start in range(0, rows.numel(), size):
        chunk = rows[start:start + size]
        yield chunk, *_key_span(parts, int(chunk.min()), int(chunk.max()) + 1)


def attention_rows(parts: QKV, rows: torch.Tensor, heads: Sequence[int] | None = None) -> torch.Tensor:
    """Attention weights of ``rows`` over every key: (H', R, T), zeros where masked."""
    heads = list(range(parts.q.shape[0])) if heads is None else list(heads)
    out = torch.zeros(len(heads), rows.numel(), parts.n_tokens, device=parts.q.device)   # (H', R, T)
    done = 0
    for chunk, a, b in row_chunks(parts, len(heads), rows):
        out[:, done:done + chunk.numel(), a:b] = weights_for(parts, chunk, heads, (a, b))
        done += chunk.numel()
    return out


def head_mix(parts: QKV, rows: torch.Tensor | None = None) -> torch.Tensor:
    """What every head reads, A·v, before the output projection: (H, R, hd) for query ``rows`` (all: (H, T, hd)).

    Layers that read every earlier position use the fused kernel (sdpa, causal) when all rows
    are asked for; windowed or soft-capped layers, and a few rows, go through :func:`weights_for`.
    Both give eager attention's numbers to float32 rounding.
    """
    H, T, hd = parts.q.shape
    if rows is None and parts.window is None and parts.softcap is None:
        k, v, gqa = parts.k, parts.v, parts.group > 1
        if gqa and parts.q.device.type != "cpu":      # GPU kernels that never hold (H, T, T) take one k/v per head
            k, v, gqa = parts.k.index_select(0, parts.kv_index()), parts.v.index_select(0, parts.kv_index()), False
        with torch.inference_mode():
            z = torch.nn.functional.scaled_dot_product_attention(
                parts.q[None], k[None], v[None], is_causal=True, scale=parts.scale, enable_gqa=gqa)   # (1, H, T, hd)
        return z[0]
    rows = torch.arange(T) if rows is None else rows
    z = torch.empty(H, rows.numel(), hd, device=parts.q.device)
    values = parts.v.index_select(0, parts.kv_index())                     # (H, T, hd)
    done = 0
    for chunk, a, b in row_chunks(parts, H, rows):
        w = weights_for(parts, chunk, None, (a, b))                        # (H, R, K)
        z[:, done:done + chunk.numel()] = torch.matmul(w, values[:, a:b])  # (H, R, hd)
        done += chunk.numel()
    return z


PART_FIELDS = ("attn_added", "mid", "mlp_act", "mlp_added", "out")


@dataclass(frozen=True)
class BlockParts:
    """What one block adds and computes, for every position. (T, d) unless noted."""

    layer: int
    attn_added: torch.Tensor      # what attention adds to the residual (after Gemma's post-norm)
    mid: torch.Tensor             # the residual between attention and the MLP
    mlp_act: torch.Tensor         # (T, d_mlp) the MLP's hidden activations (input of its down projection)
    mlp_added: torch.Tensor       # what the MLP adds to the residual
    out: torch.Tensor             # what leaves the block

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.attn_added, self.mid, self.mlp_act,
                                                           self.mlp_added, self.out))


def mlp_hidden(model: LoadedModel, layer: int, h: torch.Tensor) -> torch.Tensor:
    """The MLP's hidden activations from its (normed) input h (T, d): (T, d_mlp)."""
    arch = model.arch
    mlp = arch.mlp(_block(model, layer))
    if arch.mlp_gate is None:
        return arch.mlp_act(mlp)(arch.mlp_up(mlp)(h))                     # GELU
    return arch.mlp_act(mlp)(arch.mlp_gate(mlp)(h)) * arch.mlp_up(mlp)(h)   # SwiGLU / GeGLU


def attention_output(model: LoadedModel, layer: int, z: torch.Tensor) -> torch.Tensor:
    """What attention adds to the residual from the head mixes z (H, T, hd): (T, d)."""
    block = _block(model, layer)
    H, T, hd = z.shape
    out = model.arch.attn_out_proj(block)(z.transpose(0, 1).reshape(T, H * hd))   # (T, d)
    post = model.arch.attn_post_norm(block)
    return out if post is None else post(out)


def block_parts(model: LoadedModel, layer: int, x: torch.Tensor, heads_off: Sequence[int] = (),
                mlp_off: bool = False, rows: torch.Tensor | None = None, parts: QKV | None = None) -> BlockParts:
    """Run block ``layer`` on the residual ``x`` (T, d) that entered it, keeping every stage.

    ``rows``: only these query positions (attention still reads every key), e.g. the last one;
    every result then has R rows. ``heads_off`` are zeroed before the output projection and
    ``mlp_off`` zeroes what the MLP adds, exactly as :func:`explainer.trace` switches them off.
    """
    block, arch = _block(model, layer), model.arch
    x = x.to(model.device, torch.float32)
    with torch.inference_mode():
        parts = parts or qkv(model, layer, x)
        z = head_mix(parts, rows)                                          # (H, R, hd)
        if heads_off:
            z.index_fill_(0, to_device(torch.tensor(list(heads_off), dtype=torch.long), z.device), 0.0)
        attn_added = attention_output(model, layer, z)                     # (R, d)
        mid = (x if rows is None else x.index_select(0, to_device(rows, x.device))) + attn_added
        act = mlp_hidden(model, layer, arch.mlp_in_norm(block)(mid))       # (R, d_mlp)
        mlp_added = arch.mlp_down(block)(act)
        post = arch.mlp_post_norm(block)
        if post is not None:
            mlp_added = post(mlp_added)
        if mlp_off:
            mlp_added = torch.zeros_like(mlp_added)
        out = mid + mlp_added
    f32 = lambda t: t.detach().to(torch.float32)                           # noqa: E731  (on the model's device)
    return BlockParts(layer, f32(attn_added), f32(mid), f32(act), f32(mlp_added), f32(out))
