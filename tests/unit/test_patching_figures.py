"""What a patching map says and how it is drawn: the numbers behind the sentence, the sentences in
both languages (explainer.words.patching), the maps (explicit signed colours, strongest cells outlined, tokens on the axis,
one clickable marker per cell), a picked cell's distribution, and the ready pairs offered."""
from __future__ import annotations

import numpy as np
import pytest

from explainer.analysis.patching import PatchedPrediction, PatchingResult
from explainer.analysis.patching_pairs import READY_PAIRS, ready_pairs
from explainer.analysis.patching_summary import Carried, summarize
from explainer.figures import patching as figs
from explainer.figures import theme
from explainer.view import View
from explainer.words import patching as words

TOKENS = ("The", " E", "iffel", " Tower", " is", " in")
CORRUPTED = ("The", " Col", "osse", "um", " is", " in")


def _result(scores, site: str = "resid_pre") -> PatchingResult:
    scores = np.asarray(scores, dtype=float)
    return PatchingResult(site, scores, scores * 10 - 5, answer=1, contrast=2, clean_diff=5.0, corrupted_diff=-5.0,
                          tokens=TOKENS, corrupted_tokens=CORRUPTED, answer_label=" Paris", contrast_label=" Rome",
                          probs=((0.9, 0.01), (0.02, 0.8)), first_diff=1, clean="c", corrupted="x")


# layers 0–3: the answer sits at "iffel" (position 2); from layer 4 on only at the last position.
STORY = [[0, .2, .9, .3, 0, 0], [0, .1, .8, .4, 0, 0], [0, 0, .7, .3, 0, .1], [0, 0, .6, .2, 0, .3],
         [0, 0, .1, .1, 0, .7], [0, 0, 0, 0, 0, .95]]


def test_summary_finds_where_the_answer_is_carried():
    s = summarize(_result(STORY))
    assert s.early == Carried(position=2, first=0, last=3, best=0.9)
    assert s.late == (4, 0.95)
    assert [(c.layer, c.index) for c in s.top] == [(5, 5), (0, 2), (1, 2)]
    flat = summarize(_result(np.full((3, 6), 0.1)))
    assert flat.early is None and flat.late is None
    broken = np.array(STORY)
    broken[4, 5] = 0.2                                        # the last position drops out in layer 4
    assert summarize(_result(broken)).late == (5, 0.95)
    assert summarize(_result(STORY, "mlp_out")).early is None  # only the residual stream tells a story


def test_the_sentence_in_both_languages():
    en, zh = View.of("patching", "en"), View.of("patching", "zh")
    r = _result(STORY)
    assert words.sentence(r, en) == ("Copying the residual at “iffel” in layers 0–3 brings back ␣Paris (up to 90%). "
                                    "From layer 4 on, only the last position matters (95% at the last layer).")
    assert words.sentence(r, zh) == "在第 0–3 层复制“iffel”处的残差，就能找回 ␣Paris（最多 90%）。从第 4 层起，只有最后一个位置起作用（最后一层为 95%）。"
    assert words.sentence(_result(np.full((3, 6), 0.1)), en).startswith("No single residual brings back half")
    heads = _result([[0.1, 0.6, 0.0], [0.3, -0.2, 0.05]], "heads")
    assert words.sentence(heads, en) == ("**Head 0.1** alone brings back 60% of ␣Paris's lead. "
                                        "Then: head 1.0 (30%), head 0.0 (10%).")
    mlp = words.sentence(_result(STORY, "mlp_out"), en)
    assert mlp.startswith("Copying what the MLP adds at “␣in” in layer 5 brings back the most: 95% of ␣Paris's lead.")


def test_map_is_signed_with_explicit_colours_tokens_and_outlines():
    r = _result(STORY)
    fig = figs.map_figure(r, View.of("patching", "en"), picked=(1, 3))
    heat, marks = fig.data
    scale = [tuple(step) for step in heat.colorscale]
    assert all(isinstance(c, str) and c.startswith(("rgb", "#")) for _, c in scale)       # explicit, not a name
    assert heat.zmid == 0 and heat.zmin == -1 and heat.zmax == 1
    np.testing.assert_allclose(np.array(heat.z), r.scores)
    assert list(fig.layout.xaxis.ticktext) == ["0: The", "1: ␣E → ␣Col", "2: iffel → osse", "3: ␣Tower → um",
                                               "4: ␣is", "5: ␣in"]
    black = [(s.y0 + 0.5, s.x0 + 0.5) for s in fig.layout.shapes if s.line.color == "#000000"]
    assert black == [(5, 5), (0, 2), (1, 2)]                                              # the strongest three
    dotted = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert [(s.y0 + 0.5, s.x0 + 0.5, s.line.color) for s in dotted] == [(1, 3, theme.ACCENT)]
    assert len(marks.x) == 36 and (marks.y[8], marks.x[8]) == (1, 2)                       # one marker per cell
    assert list(marks.customdata[8]) == ["2: iffel → osse", 0.8, 3.0]


def test_heads_map_and_a_scale_wider_than_one():
    scores = [[0.1, 1.4, 0.0], [0.3, -0.2, 0.05]]
    fig = figs.map_figure(_result(scores, "heads"), View.of("patching", "zh"))
    heat = fig.data[0]
    assert heat.zmax == pytest.approx(1.4) and heat.zmin == pytest.approx(-1.4)
    assert fig.layout.xaxis.title.text == "头" and fig.layout.xaxis.ticktext is None
    assert "注意力头" in fig.layout.title.text


def test_prediction_figure_puts_the_three_runs_side_by_side():
    pred = PatchedPrediction("heads", 3, 1, (5, 9), (" Paris", " Rome"), (0.9, 0.01), (0.02, 0.8), (0.5, 0.3))
    fig = figs.prediction_figure(pred, View.of("patching", "en"))
    assert [b.name for b in fig.data] == ["clean", "corrupted", "corrupted + patch"]
    assert [list(b.y) for b in fig.data] == [[0.9, 0.01], [0.02, 0.8], [0.5, 0.3]]
    assert list(fig.data[0].x) == ["␣Paris", "␣Rome"] and "head 3.1" in fig.layout.title.text
    assert pred.rows()[1] == {"token": " Rome", "id": 9, "clean": 0.01, "corrupted": 0.8, "patched": 0.3}
    at = PatchedPrediction("mlp_out", 2, 3, (5,), (" Paris",), (0.9,), (0.02,), (0.5,), " Tower")
    assert figs.prediction_figure(at, View.of("patching", "zh")).layout.title.text == \
        "修补前馈层输出之后的下一个词元：<br>第 2 层、位置 3（␣Tower）"


def test_ready_pairs_follow_the_language_and_the_model():
    assert ready_pairs("en", "smollm2-135m") == READY_PAIRS["en"]
    zh_smol = ready_pairs("zh", "smollm2-135m")
    assert len(zh_smol) == 1 and zh_smol[0].clean.startswith("有一天")
    assert ready_pairs("zh", "gemma-3-270m") == READY_PAIRS["zh"]
    assert ready_pairs("zh", "random-gpt2") == READY_PAIRS["zh"]              # any other model: all of them


def test_the_lead_a_pair_that_does_not_flip_and_refusals_in_words():
    from explainer.analysis.patching import PatchingError
    en, zh = View.of("patching", "en"), View.of("patching", "zh")
    r = _result(STORY)
    assert words.lead(r, en) == ("Lead of ␣Paris over ␣Rome: +5.00 after the clean prompt, -5.00 after the "
                                 "corrupted one.")
    assert words.flip_note(r, en) == ""
    stuck = PatchingResult(**{**r.__dict__, "probs": ((0.9, 0.5), (0.02, 0.3))})
    assert words.flip_note(stuck, zh) == "损坏的提示仍然预测 ␣Paris，所以没有多少可以找回的。请换一个能改变答案的词。"
    lengths = PatchingError("…", "lengths", counts=(9, 13), parts=(("德国",), ("马", "达", "加", "斯", "加")))
    assert "干净的提示是 “德国”，损坏的提示是 “马达加斯加”（1 个词元对 5 个）" in words.pair_problem(lengths, zh)
    too_long = PatchingError("…", "too_long", "corrupted", (41,), 32)
    assert words.pair_problem(too_long, en).startswith("The corrupted prompt is 41 tokens; patching reads at most 32")
    assert words.pair_problem(PatchingError("…", "empty", "clean"), zh).startswith("干净的提示是空的")
    same = PatchingError("…", "same_answer", parts=((" Paris",),))
    assert words.pair_problem(same, en).startswith("Both prompts predict “␣Paris”")
