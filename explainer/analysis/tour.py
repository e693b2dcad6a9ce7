"""The guided tour: for THIS prompt and model, which view of each stage is worth seeing.

Each step names a page, the URL values that set its view (layer, head, token, …) and the
facts that fill its narration. Nothing here is canned: heads, layers and neurons are chosen
from the trace's own numbers.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Mapping

from explainer.analysis.attention import cached_head_stats, most_induction_head, most_previous_token_head
from explainer.analysis.mlp import token_neurons
from explainer.analysis.residual import cached_lens_readout
from explainer.models import LoadedModel
from explainer.trace import Trace


@dataclass(frozen=True)
class TourStep:
    page: str                                     # page slug, e.g. "attention"
    key: str                                      # narration key in text/<lang>/tour.toml
    view: Mapping[str, Any] = field(default_factory=dict)   # URL values to set on arrival
    facts: Mapping[str, Any] = field(default_factory=dict)  # fills the narration's {placeholders}


def plan_tour(model: LoadedModel, trace: Trace) -> tuple[TourStep, ...]:
    """Ten steps along the journey, each pointing at something interesting in this trace."""
    readout = cached_lens_readout(model, trace, trace.n_tokens - 1)     # the last position only
    stats = cached_head_stats(trace)
    answer = readout.answer_labels[-1]
    answer_prob = float(readout.answer_probs[-1, -1])
    first_layer = readout.first_layers[-1]
    prev_layer, prev_head = most_previous_token_head(stats) or (0, 0)
    induction = most_induction_head(stats)
    mlp_layer = int(trace.write_norms()[1][1:, -1].argmax()) + 1 if trace.n_layers > 1 else 0
    neurons = token_neurons(trace, mlp_layer, -1, k=1)
    steps = [
        TourStep("overview", "overview", {}, {"n_tokens": trace.n_tokens, "n_layers": trace.n_layers,
                                               "answer": answer}),
        TourStep("tokens", "tokens", {}, {"n_tokens": trace.n_tokens, "n_chars": len(trace.text)}),
        TourStep("embeddings", "embeddings", {}, {"d_model": trace.d_model}),
        TourStep("position", "position_rotary" if trace.rotary is not None else "position_learned"),
        TourStep("attention", "attention_previous", {"layer": prev_layer, "head": prev_head, "token": -1},
                 {"layer": prev_layer, "head": prev_head, "score": f"{stats.previous[prev_layer, prev_head]:.0%}"}),
    ]
    if induction is not None:
        layer, head = induction
        steps.append(TourStep("attention", "attention_induction", {"layer": layer, "head": head, "token": -1},
                              {"layer": layer, "head": head, "score": f"{stats.induction[layer, head]:.0%}"}))
    steps += [
        TourStep("mlp", "mlp", {"layer": mlp_layer, "token": -1, "neuron": neurons.neurons[0]},
                 {"layer": mlp_layer, "neuron": neurons.neurons[0], "value": f"{neurons.values[0]:.2f}"}),
        TourStep("layers", "layers", {"token": -1, "layer": first_layer},
                 {"answer": answer, "layer": first_layer, "n_layers": trace.n_layers}),
        TourStep("next_token", "next_token", {"temp": 1.0, "top_k": 0, "top_p": 1.0},
                 {"answer": answer, "prob": f"{answer_prob:.0%}"}),
        TourStep("generation", "generation", {"seed": 0}),
        TourStep("intervene", "intervene", {"off": f"{prev_layer}.{prev_head}", "mlp_off": ""},
                 {"layer": prev_layer, "head": prev_head}),
    ]
    return tuple(steps)


_plans: "weakref.WeakKeyDictionary[Trace, tuple[TourStep, ...]]" = weakref.WeakKeyDictionary()
_plans_lock = threading.Lock()


def cached_tour(model: LoadedModel, trace: Trace) -> tuple[TourStep, ...]:
    """:func:`plan_tour`, once per (immutable) trace."""
    with _plans_lock:
        plan = _plans.get(trace)
    if plan is None:
        plan = plan_tour(model, trace)
        with _plans_lock:
            _plans[trace] = plan
    return plan
