"""What every trace of one model repeats, read from the model once: each layer's attention window
and the rotary bases (which layers use which)."""
from __future__ import annotations

import weakref

import torch

from explainer.arch import layer_types, rope_theta, sliding_window
from explainer.models import LoadedModel
from explainer.trace import RotaryInfo

_facts_of: "weakref.WeakKeyDictionary[LoadedModel, tuple]" = weakref.WeakKeyDictionary()


def facts(model: LoadedModel) -> tuple[tuple[int | None, ...], tuple[RotaryInfo, ...]]:
    """(windows, rotary bases): what every trace of one model repeats, read from the model once."""
    if model not in _facts_of:
        _facts_of[model] = (tuple(sliding_window(model.hf_model, model.arch, l) for l in range(model.n_layers)),
                            rotary_infos(model))
    return _facts_of[model]


def rotary_infos(model: LoadedModel) -> tuple[RotaryInfo, ...]:
    """One :class:`RotaryInfo` per rotary base the model uses, with the layers that use it."""
    if not model.arch.rotary:
        return ()
    rotary_emb = model.arch.rotary_emb(model.hf_model)
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
