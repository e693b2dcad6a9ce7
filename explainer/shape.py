"""A model's shape: how many layers and heads, how wide, how many tokens it knows — declared once.

:class:`ModelShape` is shared by :class:`~explainer.models.LoadedModel`, every
:class:`~explainer.trace.Trace` it makes, the trace file and the analysis results that describe a
model (the Overview's journey and model card). It is also the one place that says "there is no
layer N": every check of a layer, head or residual row number goes through it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class ModelShape:
    """Sizes of a decoder-only transformer. Heads share key/value heads in groups of
    ``n_heads // n_kv_heads`` (grouped-query attention); ``d_model`` may differ from
    ``n_heads × head_dim`` (Gemma 3)."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_model: int
    d_mlp: int
    vocab_size: int
    context_length: int

    @classmethod
    def of_config(cls, cfg: Any) -> "ModelShape":
        """The shape a Hugging Face config declares (GPT-2's names and Llama's both work)."""
        n_heads = cfg.num_attention_heads
        d_model = cfg.hidden_size
        return cls(n_layers=cfg.num_hidden_layers, n_heads=n_heads,
                   n_kv_heads=getattr(cfg, "num_key_value_heads", None) or n_heads,
                   head_dim=getattr(cfg, "head_dim", None) or d_model // n_heads, d_model=d_model,
                   d_mlp=getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * d_model,
                   vocab_size=cfg.vocab_size,
                   context_length=getattr(cfg, "max_position_embeddings", None) or cfg.n_positions)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelShape":
        """From :meth:`to_dict` (an older trace file without key/value heads, head size or context: derived)."""
        n_heads, d_model = int(values["n_heads"]), int(values["d_model"])
        return cls(n_layers=int(values["n_layers"]), n_heads=n_heads,
                   n_kv_heads=int(values.get("n_kv_heads", n_heads)),
                   head_dim=int(values.get("head_dim", d_model // n_heads)), d_model=d_model,
                   d_mlp=int(values["d_mlp"]), vocab_size=int(values["vocab_size"]),
                   context_length=int(values.get("context_length", 0)))

    # ------------------------------------------------------------ the one check of numbers

    def check_layer(self, layer: int, what: str = "layer") -> int:
        """``layer`` if the model has it, else a ValueError that names the layers it has."""
        return check_layer(layer, self.n_layers, what)

    def check_head(self, head: int, layer: int | None = None) -> int:
        """``head`` (in ``layer``, if given) if the model has it, else a ValueError."""
        return check_head(head, self.n_heads, layer, self.n_layers)

    def check_row(self, row: int) -> int:
        """A row of the residual stream: 0 (what enters the first block) to ``n_layers`` (after the last)."""
        if not 0 <= row <= self.n_layers:
            raise ValueError(f"There is no residual row {row} (rows 0–{self.n_layers}).")
        return row

    def check_heads(self, heads: Iterable[tuple[int, int]]) -> frozenset[tuple[int, int]]:
        """(layer, head) pairs, each checked."""
        return check_heads(heads, self.n_layers, self.n_heads)

    def check_layers(self, layers: Iterable[int], what: str = "layer") -> frozenset[int]:
        """Layer numbers, each checked."""
        return check_layers(layers, self.n_layers, what)


class Sized:
    """The sizes of a ``shape``, read as attributes (``model.n_layers``, ``trace.d_model``, …): mixed into
    everything that holds a :class:`ModelShape`, so none declares the sizes again."""

    shape: ModelShape
    n_layers = property(lambda self: self.shape.n_layers, doc="Blocks.")
    n_heads = property(lambda self: self.shape.n_heads, doc="Query heads per block.")
    n_kv_heads = property(lambda self: self.shape.n_kv_heads, doc="Key/value heads per block.")
    head_dim = property(lambda self: self.shape.head_dim, doc="Width of one head.")
    d_model = property(lambda self: self.shape.d_model, doc="Width of the residual stream.")
    d_mlp = property(lambda self: self.shape.d_mlp, doc="Width of each MLP's hidden layer.")
    vocab_size = property(lambda self: self.shape.vocab_size, doc="Tokens the model knows.")
    context_length = property(lambda self: self.shape.context_length, doc="The longest text it was made for.")


def check_layer(layer: int, n_layers: int, what: str = "layer") -> int:
    """``layer`` if it is one of ``n_layers``, else a ValueError naming the layers there are."""
    if not 0 <= layer < n_layers:
        raise ValueError(f"There is no {what} {layer} (layers 0–{n_layers - 1}).")
    return layer


def check_head(head: int, n_heads: int, layer: int | None = None, n_layers: int = 0) -> int:
    """``head`` if it is one of ``n_heads`` (in ``layer`` of ``n_layers``, if given), else a ValueError."""
    if layer is None:
        if not 0 <= head < n_heads:
            raise ValueError(f"There is no head {head} (heads 0–{n_heads - 1}).")
    elif not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise ValueError(f"There is no head {head} in layer {layer} (layers 0–{n_layers - 1}, "
                         f"heads 0–{n_heads - 1}).")
    return head


def check_heads(heads: Iterable[tuple[int, int]], n_layers: int, n_heads: int) -> frozenset[tuple[int, int]]:
    """(layer, head) pairs, each checked."""
    out = frozenset((int(layer), int(head)) for layer, head in heads)
    for layer, head in out:
        check_head(head, n_heads, layer, n_layers)
    return out


def check_layers(layers: Iterable[int], n_layers: int, what: str = "layer") -> frozenset[int]:
    """Layer numbers, each checked."""
    out = frozenset(int(layer) for layer in layers)
    for layer in out:
        check_layer(layer, n_layers, what)
    return out
