"""Why this answer? in words: the sentence naming what pushed the answer most, and why a typed answer
cannot be explained."""
from __future__ import annotations

from explainer import tokens
from explainer.analysis.attribution import TargetError
from explainer.analysis.attribution_inputs import InputAttribution
from explainer.analysis.why import AnswerPushes
from explainer.view import View


def sentence(p: AnswerPushes, inputs: InputAttribution | None, view: View) -> str:
    """One or two sentences naming what pushed the answer most: heads, an MLP layer, a word. Reads
    sentence_heads, head_value, sentence_no_head, sentence_mlp, sentence_word, list_sep, sentence_sep."""
    t = view.t
    answer = tokens.for_markdown(p.target_label)
    parts = []
    if p.top_heads:
        first, *rest = p.top_heads
        parts.append(t["sentence_heads"].format(layer=first.layer, head=first.head, answer=answer,
                                                value=first.value, others=t["list_sep"].join(
            t["head_value"].format(layer=c.layer, head=c.head, value=c.value) for c in rest) or "—"))
    else:
        parts.append(t["sentence_no_head"].format(answer=answer))
    if p.top_mlps:
        parts.append(t["sentence_mlp"].format(layer=p.top_mlps[0].layer, value=p.top_mlps[0].value))
    if inputs is not None and len(inputs.scores) > len(inputs.kept):
        best = max((i for i in range(len(inputs.scores)) if i not in inputs.kept), key=lambda i: inputs.scores[i])
        if inputs.scores[best] > 0:
            parts.append(t["sentence_word"].format(word=tokens.for_markdown(inputs.tokens[best]),
                                                   points=100 * inputs.scores[best]))
    return t["sentence_sep"].join(parts)


def scores_note(r: InputAttribution, view: View) -> str:
    """Markdown under the words' scores: what they add up to and, when integrated gradients miss the
    5 % target, that they do, by how much and why they stopped. Reads inputs_note, inputs_note_ig,
    inputs_missed, inputs_missed_points ({output}, {baseline}, {total}, {gap}, {error}, {steps}, {seconds})."""
    t = view.t
    values = dict(output=r.output, baseline=r.baseline_output, total=r.scores.sum(), gap=r.gap,
                  error=r.completeness_error, steps=r.steps, seconds=r.seconds)
    if r.missed:
        return t["inputs_missed" if r.stopped == "budget" else "inputs_missed_points"].format(**values)
    return t["inputs_note_ig" if r.method == "integrated_gradients" else "inputs_note"].format(**values)


def target_problem(err: TargetError, vocab_size: int, view: View) -> str:
    """Markdown: why a typed answer cannot be explained, in the page's language (its pieces named).
    Reads bad_target ({reason}), target_<reason> ({error}, {pieces}, {n}, {last}), list_sep."""
    t = view.t
    pieces = [tokens.for_markdown(p) for p in err.pieces]
    reason = t.get("target_" + err.reason, "{error}").format(
        error=tokens.markdown_text(str(err)), pieces=t["list_sep"].join(f"“{p}”" for p in pieces), n=len(pieces),
        last=f"{vocab_size - 1:,}")
    return t["bad_target"].format(reason=reason)
