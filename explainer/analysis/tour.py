"""The guided tour: for THIS prompt and model, what in each stage of the journey is worth seeing.

The planner says *what* to show, in numbers: a stage of the journey and the layer, head,
neuron and value it is about, chosen from the trace's own numbers (nothing is canned). The
stages and their order come from the page registry (``explainer.registry``); a stage without a
planner of its own here gets one plain stop. Pages, URL values and narration are
``explainer.ui.stage.tour``'s business.
"""
from __future__ import annotations

from dataclasses import dataclass

from explainer.analysis.attention import cached_head_stats, most_induction_head, most_previous_token_head
from explainer.analysis.attribution import direct_logit_attribution, top_components
from explainer.analysis.mlp import token_neurons
from explainer.analysis.residual import cached_lens_readout
from explainer.memo import per_trace
from explainer.models import LoadedModel
from explainer.registry import tour_stages
from explainer.trace import Trace

# The journey, in order: text → tokens → vectors → position → attention → MLP → the residual
# stream read by the logit lens → the prediction → generation → why this answer (attribution) ….
STAGES = tour_stages()


@dataclass(frozen=True)
class Stop:
    """One stop of the tour: a stage and what to look at there."""

    stage: str                      # one of STAGES
    focus: str = ""                 # attention: "previous" | "induction"; position: "rotary" | "learned"
    layer: int | None = None
    head: int | None = None
    neuron: int | None = None
    value: float | None = None      # the number the stop is about (a head's share, an activation, a probability)
    answer: str = ""                # the label of the model's final answer at the last token
    heads: tuple[tuple[int, int], ...] = ()   # attribution: the heads that push the answer up most


@per_trace
def plan_tour(model: LoadedModel, trace: Trace) -> tuple[Stop, ...]:
    """Ten or eleven stops along the journey, each pointing at something interesting in this trace."""
    readout = cached_lens_readout(model, trace, trace.n_tokens - 1)     # the last position only
    stats = cached_head_stats(trace, sample=True)      # a long text: the even sample picks the same heads
    answer = readout.answer_labels[-1]
    prev_layer, prev_head = most_previous_token_head(stats) or (0, 0)
    induction = most_induction_head(stats)
    mlp_layer = int(trace.write_norms()[1][1:, -1].argmax()) + 1 if trace.n_layers > 1 else 0
    neurons = token_neurons(trace, mlp_layer, -1, k=1)
    attention = [Stop("attention", "previous", prev_layer, prev_head,
                      value=float(stats.previous[prev_layer, prev_head]))]
    if induction is not None:
        layer, head = induction
        attention.append(Stop("attention", "induction", layer, head, value=float(stats.induction[layer, head])))
    planned = {
        "journey": [Stop("journey", answer=answer)],
        "position": [Stop("position", "rotary" if trace.rotary is not None else "learned")],
        "attention": attention,
        "mlp": [Stop("mlp", layer=mlp_layer, neuron=neurons.neurons[0], value=neurons.values[0])],
        "lens": [Stop("lens", layer=readout.first_layers[-1], answer=answer)],
        "prediction": [Stop("prediction", value=float(readout.answer_probs[-1, -1]), answer=answer)],
        "attribution": [_attribution_stop(model, trace, answer, (prev_layer, prev_head))],
    }
    return tuple(stop for stage in STAGES for stop in planned.get(stage, [Stop(stage)]))


def _attribution_stop(model: LoadedModel, trace: Trace, answer: str, fallback: tuple[int, int]) -> Stop:
    """The head that pushes the answer up most, and the three that push most (to switch off)."""
    try:
        top = top_components(direct_logit_attribution(model, trace), 3, "up", kinds=("head",))
    except ValueError:                              # a model whose logits do not split (a final soft cap)
        return Stop("attribution", layer=fallback[0], head=fallback[1], answer=answer, heads=(fallback,))
    first = top[0]
    return Stop("attribution", layer=first.layer, head=first.head, value=first.value, answer=answer,
                heads=tuple((c.layer, c.head) for c in top))
