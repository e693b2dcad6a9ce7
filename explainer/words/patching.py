"""Where is the answer decided? in words: what a patching map shows ("Copying the residual at “␣Tower”
in layers 0–12 brings back ␣Paris …"), the answer's lead in both runs, a pair whose answer does not
flip, a patched cell's name, and why a pair cannot be patched."""
from __future__ import annotations

from explainer import tokens
from explainer.analysis.patching import PatchedPrediction, PatchingError, PatchingResult
from explainer.analysis.patching_summary import summarize
from explainer.view import View


def sentence(result: PatchingResult, view: View) -> str:
    """What the map shows, in one or two sentences (Markdown), from its numbers (:func:`summarize`).

    Reads sentence_carried, sentence_last, sentence_none (the residual stream), sentence_top with
    adds_<site> and other_cell (attention and MLP outputs), sentence_heads with other_head (heads),
    list_sep and sentence_sep."""
    t, s = view.t, summarize(result)
    answer = tokens.for_markdown(result.answer_label)
    word = lambda i: tokens.for_markdown(result.tokens[i])                    # noqa: E731
    if not result.by_position:
        first, *rest = s.top
        others = t["list_sep"].join(t["other_head"].format(layer=c.layer, head=c.index, score=c.score) for c in rest)
        return t["sentence_heads"].format(layer=first.layer, head=first.index, score=first.score, answer=answer,
                                          others=others)
    if result.site != "resid_pre":
        first, *rest = s.top
        others = t["list_sep"].join(t["other_cell"].format(layer=c.layer, token=word(c.index), score=c.score)
                                    for c in rest)
        return t["sentence_top"].format(adds=t["adds_" + result.site], token=word(first.index), layer=first.layer,
                                        score=first.score, answer=answer, others=others)
    parts = []
    if s.early is not None:
        parts.append(t["sentence_carried"].format(token=word(s.early.position), first=s.early.first,
                                                  last=s.early.last, answer=answer, best=s.early.best))
    if s.late is not None:
        parts.append(t["sentence_last"].format(layer=s.late[0], score=s.late[1], answer=answer))
    if not parts:
        best = s.top[0]
        parts.append(t["sentence_none"].format(answer=answer, score=best.score, layer=best.layer,
                                               token=word(best.index)))
    return t["sentence_sep"].join(parts)


def lead(result: PatchingResult, view: View) -> str:
    """The answer's lead over the contrast after the clean prompt, then after the corrupted one (Markdown).
    Reads lead ({answer}, {contrast}, {clean}, {corrupted})."""
    return view.t["lead"].format(answer=tokens.for_markdown(result.answer_label), clean=result.clean_diff,
                                 contrast=tokens.for_markdown(result.contrast_label), corrupted=result.corrupted_diff)


def flip_note(result: PatchingResult, view: View) -> str:
    """A warning when the corrupted prompt still prefers the clean answer (little to bring back), else ""
    (Markdown). Reads no_flip ({answer})."""
    (_, answer_after), (_, contrast_after) = result.probs
    return view.t["no_flip"].format(answer=tokens.for_markdown(result.answer_label)) \
        if answer_after >= contrast_after else ""


def cell_label(pred: PatchedPrediction, view: View) -> str:
    """The patched cell: "layer 3, position 2 (␣Tower)" or "head 3.1" (plotly text).
    Reads cell_position ({layer}, {position}, {token}) or cell_head ({layer}, {head})."""
    if pred.site == "heads":
        return view.t["cell_head"].format(layer=pred.layer, head=pred.index)
    return view.t["cell_position"].format(layer=pred.layer, position=pred.index, token=tokens.for_plotly(pred.token))


def pair_problem(err: PatchingError, view: View) -> str:
    """Why a pair cannot be patched, and what to do, in the page's language (Markdown). Reads
    error_<reason>, which_<clean|corrupted>, nothing and error_other."""
    t = view.t
    which = t.get("which_" + err.which, "")
    quoted = lambda part: "“" + "".join(tokens.for_markdown(p) for p in part) + "”" if part else t["nothing"]  # noqa: E731
    if err.reason == "lengths":
        a, b = err.parts
        return t["error_lengths"].format(clean_n=err.counts[0], corrupted_n=err.counts[1], clean_part=quoted(a),
                                         corrupted_part=quoted(b), clean_part_n=len(a), corrupted_part_n=len(b))
    if err.reason == "too_long":
        return t["error_too_long"].format(which=which, n=err.counts[0], cap=err.cap)
    if err.reason == "same_answer":
        return t["error_same_answer"].format(token=quoted(err.parts[0]))
    return t.get("error_" + err.reason, t["error_other"]).format(which=which, error=tokens.markdown_text(str(err)))
