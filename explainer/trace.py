"""The :class:`Trace`: one forward pass, kept as its residual stream; every other stage on demand.

A trace keeps what grows with tokens, not tokens²: the residual stream entering every block
and leaving the last one, and the exact next-token logits. Attention weights, what each
attention and MLP adds, MLP activations, logits at any position, token and position
embeddings are computed when asked for, by running the block's own modules again on the
residual it read (:mod:`explainer.blocks`), and kept in a small per-trace cache. Every
accessor returns a fresh float32 tensor, so callers can never change what is shared.

Tensors live on the device that computed them (:attr:`Trace.device`: the model's GPU, or the CPU),
and so does everything recomputed from them; only ``token_ids`` (the ids the model was given) are
on the CPU. Analysis results bring what a page draws to the CPU (:func:`explainer.devices.host`).
The token labels are made when first asked for (:class:`explainer.token_text.TokenText`).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable

import torch

from explainer import blocks, trace_file
from explainer.arch import RotaryInfo
from explainer.budget import check_fits
from explainer.cache import ByteLRU
from explainer.devices import on_device, to_device
from explainer.shape import ModelShape, Sized
from explainer.token_text import TokenText

if TYPE_CHECKING:
    from explainer.models import LoadedModel

Rows = int | slice | range | Iterable[int] | torch.Tensor | None


def _tensor_bytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(frozen=True, eq=False)
class Trace(Sized):
    """One forward pass. Shapes: T tokens, n layers, H heads, d model width, V vocabulary."""

    model_name: str
    text: str
    token_ids: torch.Tensor          # (T,) exactly the ids the model saw (on the CPU)
    _text: TokenText = field(repr=False, compare=False)   # the tokens' bytes and labels, made when asked for
    truncated: bool
    arch: str                        # the model's family ("gpt2", "llama", "qwen3", "gemma3")
    shape: ModelShape                # the model's sizes (n_layers, n_heads, d_model, … read through it)
    precision: str                   # "float32": what is kept and computed
    rotary: RotaryInfo | None        # the first layer's rotary base (None: learned positions)
    ablated_heads: frozenset = frozenset()
    ablated_mlps: frozenset = frozenset()
    rotaries: tuple[RotaryInfo, ...] = ()          # every rotary base, with the layers using it
    windows: tuple[int | None, ...] = ()           # per layer: positions a query reads (None: all)
    _residual: torch.Tensor = field(default=None, repr=False)     # (n+1, T, d)
    _last_logits: torch.Tensor = field(default=None, repr=False)  # (V,) float32, HF's own
    _summary: dict = field(default=None, repr=False, compare=False)  # small per-layer numbers of the pass
    _model: "LoadedModel | None" = field(default=None, repr=False, compare=False)
    _parts: ByteLRU = field(default=None, repr=False, compare=False)   # recomputed layers, queries and keys

    def __post_init__(self) -> None:
        if self._parts is None:
            object.__setattr__(self, "_parts", ByteLRU(self.cache_budget(), size_of=lambda part: part.nbytes()))

    # ------------------------------------------------------------ what is kept

    @property
    def n_tokens(self) -> int:
        return int(self.token_ids.shape[0])


    @property
    def tokens(self) -> tuple[str, ...]:
        """A legible label per token (:func:`explainer.tokens.legible`)."""
        return self._text.labels

    @property
    def token_bytes(self) -> tuple[bytes, ...]:
        """The raw bytes each token stands for."""
        return self._text.pieces

    @property
    def device(self) -> torch.device:
        """Where the kept tensors live, and where everything recomputed from them is computed."""
        return self._residual.device

    @property
    def residual(self) -> torch.Tensor:
        """Residual stream entering each block, then leaving the last one: (n+1, T, d)."""
        return self._residual.clone()

    def stream(self, layer: int) -> torch.Tensor:
        """One row of the residual stream (T, d): what enters block ``layer`` (``n`` = after the last)."""
        return self._residual[self.shape.check_row(layer)].clone()

    @property
    def next_token_logits(self) -> torch.Tensor:
        """Logits for the token after the prompt (V,), float32, as the model computed them."""
        return self._last_logits.clone()

    def kept_bytes(self) -> int:
        """Bytes of tensor data the trace itself keeps."""
        return _tensor_bytes(self.token_ids, self._residual, self._last_logits, *(self._summary or {}).values())

    def write_norms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """L2 norms of what every attention and every MLP added at every position: two (n, T).

        Measured during the pass itself, so the whole-model view costs nothing extra.
        """
        return self._summary["attn_norms"].clone(), self._summary["mlp_norms"].clone()

    def mlp_peaks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per layer and neuron, the activation where |activation| is largest and its position:
        (n, d_mlp) float, (n, d_mlp) long. Measured during the pass."""
        return self._summary["mlp_peak"].clone(), self._summary["mlp_peak_pos"].clone()

    def cache_budget(self) -> int:
        """Bytes the on-demand cache of this trace may hold (recomputed layers, queries and keys)."""
        return int(min(max(self.kept_bytes(), 32 * 2**20), 512 * 2**20))

    def nbytes(self) -> int:
        """What this trace may take at most: kept tensors plus its on-demand cache."""
        return self.kept_bytes() + self.cache_budget()

    # ------------------------------------------------------------ the model behind it

    @property
    def model(self) -> "LoadedModel":
        """The model that made this trace (loaded by name for a trace read from a file)."""
        if self._model is None:
            from explainer.models import load_model
            model = load_model(self.model_name)
            if (model.n_layers, model.d_model, model.vocab_size) != (self.n_layers, self.d_model, self.vocab_size):
                raise ValueError(f"The model '{self.model_name}' loaded now does not match this trace.")
            for name in ("_residual", "_last_logits"):                # computed on its device from now on
                object.__setattr__(self, name, getattr(self, name).to(model.device))
            object.__setattr__(self, "_summary", on_device(self._summary, model.device))
            object.__setattr__(self, "_model", model)
        return self._model

    def _heads_off(self, layer: int) -> tuple[int, ...]:
        return tuple(sorted(h for l, h in self.ablated_heads if l == layer))

    def parts(self, layer: int, rows: Rows = None) -> blocks.BlockParts:
        """Everything block ``layer`` computed (at query ``rows``, default all), recomputed from the
        residual it read. The whole layer is cached; a few rows are computed alone (cheap)."""
        self.shape.check_layer(layer)
        full_key = ("parts", layer)
        if rows is not None:
            rows_t = self.rows(rows)
            cached = self._parts.peek(full_key)
            if cached is not None:
                picked = to_device(rows_t, cached.out.device)
                return blocks.BlockParts(layer, *(getattr(cached, f)[picked] for f in blocks.PART_FIELDS))
            return self._parts.get_or_compute(("parts", layer, tuple(rows_t.tolist())), lambda: blocks.block_parts(
                self.model, layer, self._residual[layer], self._heads_off(layer), layer in self.ablated_mlps,
                rows=rows_t, parts=self.qkv(layer)))
        return self._parts.get_or_compute(full_key, lambda: blocks.block_parts(
            self.model, layer, self._residual[layer], self._heads_off(layer), layer in self.ablated_mlps,
            parts=self.qkv(layer)))

    def qkv(self, layer: int) -> blocks.QKV:
        """Queries, keys and values of ``layer`` (cached)."""
        self.shape.check_layer(layer)
        return self._parts.get_or_compute(("qkv", layer), lambda: blocks.qkv(self.model, layer, self._residual[layer]))

    def block_check(self, layer: int) -> float:
        """Largest |recomputed block output − the stored next residual|: ~1e-6 when all is right."""
        out = self.parts(layer).out                                                     # (T, d)
        return float((out - self._residual[layer + 1].to(out.device)).abs().max())

    # ------------------------------------------------------------ attention

    def rows(self, rows: Rows) -> torch.Tensor:
        """Query positions as a long tensor (all of them for None), checked against the prompt."""
        T = self.n_tokens
        if rows is None:
            return torch.arange(T)
        if isinstance(rows, int):
            rows = [rows]
        elif isinstance(rows, slice):
            rows = range(*rows.indices(T))
        out = torch.as_tensor(list(rows) if not isinstance(rows, torch.Tensor) else rows, dtype=torch.long)
        out = out.reshape(-1)
        if out.numel() and (out.min() < -T or out.max() >= T):
            raise ValueError(f"Positions must be in 0–{T - 1}.")
        return out % T

    def attention(self, layer: int, rows: Rows = None, heads: Iterable[int] | None = None) -> torch.Tensor:
        """Attention weights of ``layer``: (heads, len(rows), T); rows are queries, columns keys.

        Computed on demand exactly as eager attention does it (causal mask, sliding window,
        shared key/value heads); 0 where a key is hidden.
        """
        self.shape.check_layer(layer)
        rows_t = self.rows(rows)
        heads = list(range(self.n_heads)) if heads is None else list(heads)
        check_fits(4 * len(heads) * rows_t.numel() * self.n_tokens, "these attention weights", self.device)
        return blocks.attention_rows(self.qkv(layer), rows_t, heads)

    @property
    def attentions(self) -> torch.Tensor:
        """All attention weights (n, H, T, T). Prefer :meth:`attention` for long prompts."""
        check_fits(4 * self.n_layers * self.n_heads * self.n_tokens ** 2, "the attention weights of every layer",
                   self.device)
        return torch.stack([self.attention(layer) for layer in range(self.n_layers)])

    # ------------------------------------------------------------ what each block adds

    def attn_out_at(self, layer: int, rows: Rows = None) -> torch.Tensor:
        """What attention in block ``layer`` adds to the residual: (T, d), or (R, d) at ``rows``."""
        return self.parts(layer, rows).attn_added.clone()

    def mlp_out_at(self, layer: int, rows: Rows = None) -> torch.Tensor:
        """What the MLP in block ``layer`` adds to the residual: (T, d), or (R, d) at ``rows``."""
        return self.parts(layer, rows).mlp_added.clone()

    def mid(self, layer: int, rows: Rows = None) -> torch.Tensor:
        """The residual between attention and the MLP of block ``layer``: (T, d), or (R, d)."""
        return self.parts(layer, rows).mid.clone()

    def mlp_activation(self, layer: int, rows: Rows = None) -> torch.Tensor:
        """MLP hidden activations of one layer (T, d_mlp), the input of its down projection."""
        return self.parts(layer, rows).mlp_act.clone()

    def stream_at(self, positions: Rows) -> torch.Tensor:
        """The residual stream at some positions, every row: (n+1, P, d)."""
        return self._residual[:, to_device(self.rows(positions), self.device)]                # (n+1, P, d)

    def _stacked(self, name: str, width: int) -> torch.Tensor:
        check_fits(4 * self.n_layers * self.n_tokens * width, f"every layer's {name}", self.device)
        return torch.stack([getattr(self.parts(layer), name) for layer in range(self.n_layers)])

    @property
    def attn_out(self) -> torch.Tensor:
        """(n, T, d) what every attention adds. Prefer :meth:`attn_out_at` for long prompts."""
        return self._stacked("attn_added", self.d_model)

    @property
    def mlp_out(self) -> torch.Tensor:
        """(n, T, d) what every MLP adds. Prefer :meth:`mlp_out_at` for long prompts."""
        return self._stacked("mlp_added", self.d_model)

    @property
    def mlp_activations(self) -> torch.Tensor:
        """(n, T, d_mlp) every MLP's hidden activations. Prefer :meth:`mlp_activation`."""
        return self._stacked("mlp_act", self.d_mlp)

    # ------------------------------------------------------------ logits and embeddings

    def logits_at(self, positions: Rows) -> torch.Tensor:
        """Logits after the tokens at ``positions``: (P, V) float32; the last position is the model's own."""
        rows = self.rows(positions)
        check_fits(4 * rows.numel() * self.vocab_size, "these logits", self.device)
        from explainer.arch import unembed
        m = self.model
        norm = m.arch.final_norm(m.hf_model)
        out = torch.empty(rows.numel(), self.vocab_size, device=m.device)                 # (P, V)
        with torch.inference_mode():
            for start in range(0, rows.numel(), 64):
                sl = rows[start:start + 64]
                x = self._residual[self.n_layers, to_device(sl, self.device)].to(m.device)   # (c, d)
                out[start:start + sl.numel()] = unembed(m.hf_model, norm(x)).float()
        own = [i for i, p in enumerate(rows.tolist()) if p == self.n_tokens - 1]     # host ids: no device read
        if own:
            out[own] = self._last_logits.to(m.device)
        return out

    @property
    def logits(self) -> torch.Tensor:
        """Logits at every position (T, V). Prefer :meth:`logits_at` for long prompts or big vocabularies."""
        return self.logits_at(None)

    @property
    def embeddings(self) -> torch.Tensor:
        """Token vectors as the first block reads them, before positions are added: (T, d).

        Gemma 3 scales them by √d inside its embedding module; that scale is included.
        """
        m = self.model
        with torch.inference_mode():
            return m.arch.token_embedding(m.hf_model)(to_device(self.token_ids, m.device)).float()   # (T, d)

    @property
    def positions(self) -> torch.Tensor | None:
        """Learned position embeddings (T, d), or None for rotary models."""
        m = self.model
        table = m.arch.position_embedding(m.hf_model)
        if table is None:
            return None
        with torch.inference_mode():
            return table(torch.arange(self.n_tokens, device=m.device)).float()                      # (T, d)

    # ------------------------------------------------------------ save / load

    def save(self, path: str | Path | BinaryIO) -> str | Path | BinaryIO:
        """Write an .npz (a path or a binary file object): the residual stream, logits and metadata."""
        arrays = {"residual": self._residual, "last_logits": self._last_logits, "token_ids": self.token_ids,
                  **{f"summary_{k}": v for k, v in (self._summary or {}).items()},
                  **{f"rotary_inv_freq_{i}": r.inv_freq for i, r in enumerate(self.rotaries)}}
        return trace_file.write(path, self.metadata(), arrays)

    def to_bytes(self) -> bytes:
        """The .npz file as bytes (for a download button)."""
        buffer = io.BytesIO()
        self.save(buffer)
        return buffer.getvalue()

    def metadata(self) -> dict:
        """Everything but the tensors, as JSON-ready values."""
        return {"model_name": self.model_name, "text": self.text, "tokens": list(self.tokens),
                "token_bytes": [b.hex() for b in self.token_bytes], "truncated": self.truncated, "arch": self.arch,
                **self.shape.to_dict(), "precision": self.precision,
                "rotaries": [{"theta": r.theta, "head_dim": r.head_dim, "layers": list(r.layers)} for r in self.rotaries],
                "windows": list(self.windows), "ablated_heads": sorted(map(list, self.ablated_heads)),
                "ablated_mlps": sorted(self.ablated_mlps)}

    @classmethod
    def load(cls, path: str | Path | BinaryIO, model: "LoadedModel | None" = None) -> "Trace":
        """Read a trace written by :meth:`save`. On-demand stages need its model: pass it, or it is
        loaded by name the first time one is asked for. With ``model`` the tensors go to its device
        (where everything recomputed from them is computed); without, they stay on the CPU until then."""
        meta, arrays = trace_file.read(path)
        rotaries = tuple(RotaryInfo(r["theta"], r["head_dim"], arrays[f"rotary_inv_freq_{i}"], tuple(r["layers"]))
                         for i, r in enumerate(meta["rotaries"]))
        dev = torch.device("cpu") if model is None else model.device
        summary = {k.removeprefix("summary_"): v for k, v in arrays.items() if k.startswith("summary_")}
        text = TokenText((), pieces=[bytes.fromhex(b) for b in meta["token_bytes"]], labels=meta["tokens"])
        return cls(model_name=meta["model_name"], text=meta["text"], token_ids=arrays["token_ids"], _text=text,
                   truncated=meta["truncated"], arch=meta["arch"], shape=ModelShape.from_dict(meta),
                   precision=meta["precision"], rotary=rotaries[0] if rotaries else None, rotaries=rotaries,
                   windows=tuple(meta["windows"]), ablated_heads=frozenset(tuple(x) for x in meta["ablated_heads"]),
                   ablated_mlps=frozenset(meta["ablated_mlps"]), _residual=arrays["residual"].to(dev),
                   _last_logits=arrays["last_logits"].to(dev), _model=model, _summary=on_device(summary, dev))
