"""Learning figure builders: structure, hover text and exact numbers from handmade inputs."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from explainer.figures import learning as figs
from explainer.learning import (AttentionMap, Checkpoint, NextTokenDistribution, Sample, TokenProb,
                                UnseenContinuation, attention_mask_matrix, count_ngrams)
from explainer.learning import results as R
from explainer.text import texts
from explainer.view import View

T = texts("learning", "en")
T_ZH = texts("learning", "zh")
VIEW = View.of("learning")


def _dist(prompt: str, *pairs: tuple[str, float]) -> NextTokenDistribution:
    return NextTokenDistribution(prompt, tuple(TokenProb(tok, p) for tok, p in pairs))


def _checkpoint(step: int, best: float) -> Checkpoint:
    probes = (_dist("the apple is", ("red", best), ("green", (1 - best) / 2)),
              _dist("the sky is", ("blue", best), ("<b>", (1 - best) / 2)))
    return Checkpoint(step, probes, (Sample("the apple is", " red .", " red red"),))


def test_moving_average_is_a_trailing_mean() -> None:
    np.testing.assert_allclose(figs.moving_average([1, 2, 3, 4], window=2), [1, 1.5, 2.5, 3.5])
    assert figs.moving_average([]).size == 0


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_loss_figure_has_train_smooth_heldout_and_baselines(lang) -> None:
    view = View.of("learning", lang)
    t = view.t
    fig = figs.loss_figure(R.LossCurves((3.0, 2.5, 2.0), ((0, 3.2), (3, 2.1)), {"bigram": 2.4}), view)
    assert isinstance(fig, go.Figure)
    names = [tr.name for tr in fig.data]
    assert names == [t["train_loss"], t["train_smooth"], t["heldout_loss"], t["bigram"]]
    assert list(fig.data[2].x) == [0, 3] and list(fig.data[3].y) == [2.4, 2.4]
    assert fig.layout.title.text == t["loss_title"] and t["step"] in fig.data[0].hovertemplate


def test_loss_figure_at_step_zero_is_empty_but_valid() -> None:
    fig = figs.loss_figure(R.LossCurves((), ((0, 5.0),)), VIEW)
    assert len(fig.data) == 3 and list(fig.data[0].x) == []


def test_probes_figure_puts_step_zero_left_and_escapes_tokens() -> None:
    fig = figs.probes_figure(R.ProbesBeforeAfter(_checkpoint(0, 0.1), _checkpoint(40, 0.9)), VIEW)
    assert len(fig.data) == 4                                   # 2 probes x (before, after)
    left, right = fig.data[0], fig.data[1]
    assert list(left.x) == pytest.approx([0.1, 0.45]) and list(right.x) == pytest.approx([0.9, 0.05])
    assert fig.data[3].customdata[1] == "&lt;b&gt;"             # token text is escaped, not HTML
    assert fig.layout.title.text == T["probes_title"].format(before=0, after=40)
    assert right.marker.color[0] == figs.AFTER                  # the top guess is highlighted


def test_attention_figure_shows_the_chosen_head_before_and_after() -> None:
    w = np.zeros((2, 2, 3, 3))
    w[1, 0] = np.tril(np.ones((3, 3))) / np.arange(1, 4)[:, None]
    before = AttentionMap(("a", "b", "c"), np.full((2, 2, 3, 3), 1 / 3), 0)
    after = AttentionMap(("a", "b", "c"), w, 40)
    fig = figs.attention_figure(R.AttentionBeforeAfter(before, after, 1, 0), VIEW)
    assert len(fig.data) == 2 and fig.data[0].type == "heatmap"
    np.testing.assert_allclose(fig.data[1].z, w[1, 0])
    assert list(fig.data[0].x) == ["0: a", "1: b", "2: c"]                 # "position: token", the one rule
    assert T["attention_after"].format(step=40) in [a.text for a in fig.layout.annotations]


def test_sample_count_and_unseen_rows() -> None:
    rows = figs.sample_rows([_checkpoint(0, 0.1), _checkpoint(20, 0.5)], VIEW)
    assert [r[T["col_step"]] for r in rows] == [0, 20] and rows[0][T["col_greedy"]] == " red ."
    model = count_ngrams(["a", "b", "a", "b", "a", "c"], 2)
    table = figs.count_rows(model, VIEW)
    assert table[0] == {T["col_context"]: "a", T["col_count"]: 3, T["col_next"]: "b (2) · c (1)"}
    unigram = figs.count_rows(count_ngrams(["x", "y", "x"], 1), VIEW)
    assert unigram[0][T["col_context"]] == T["empty_context"] and unigram[0][T["col_next"]] == "x (2) · y (1)"
    unseen = figs.unseen_rows([UnseenContinuation(("grapes",), "are", "unseen context", 0.0, 0.31234),
                               UnseenContinuation(("is",), "gold", "unseen pair", 0.0, 0.01)], VIEW)
    assert unseen[0][T["col_kind"]] == T["kind_context"] and unseen[1][T["col_kind"]] == T["kind_pair"]
    assert unseen[0][T["col_neural_prob"]] == 0.3123 and unseen[0][T["col_ngram_prob"]] == 0.0


def test_compare_figure_uses_the_union_of_top_tokens_and_zero_for_missing() -> None:
    panels = (("the apple is", {"bigram": {"red": 0.5, "green": 0.5}, "gpt": {"red": 0.7, "pink": 0.2}}),)
    fig = figs.compare_figure(R.ModelsOnProbes(panels, top=2), VIEW)
    assert [tr.name for tr in fig.data] == [T["bigram"], T["gpt"]]            # text keys, in words
    assert list(fig.data[0].x) == ["red", "green", "pink"]
    assert list(fig.data[0].y) == [0.5, 0.5, 0.0] and list(fig.data[1].y) == [0.7, 0.0, 0.2]
    assert fig.data[0].marker.color == figs.BEFORE and fig.layout.barmode == "group"


def test_heldout_masks_objectives_and_candidates() -> None:
    fig = figs.heldout_figure(R.HeldoutScores({"bigram": 2.0, "gpt": 1.0}), VIEW)
    assert list(fig.data[0].customdata) == pytest.approx([np.exp(2.0), np.exp(1.0)])
    masks = figs.masks_figure(R.Masks(("a", "b", "c"), attention_mask_matrix("gpt", 3),
                                      attention_mask_matrix("bert", 3)), VIEW)
    np.testing.assert_array_equal(masks.data[0].z, np.tril(np.ones((3, 3))))
    np.testing.assert_array_equal(masks.data[1].z, np.ones((3, 3)))
    loss = figs.objectives_loss_figure(R.ObjectiveLosses((2.0, 1.0), (3.0, 2.0)), VIEW)
    assert [tr.name for tr in loss.data] == [T["gpt"], T["bert"]]
    cand = figs.candidates_figure(R.FillTheBlank("the <b>", (TokenProb("red", 0.6),), (TokenProb("cow", 0.8),)), VIEW)
    assert len(cand.data) == 2 and list(cand.data[1].x) == [0.8]
    assert "&lt;b&gt;" in cand.layout.annotations[0].text                       # the user's text, escaped
    assert R.distribution_dict(_dist("p", ("a", 0.25))) == {"a": 0.25}


def test_loss_rows_join_training_and_heldout_by_step():
    rows = R.LossCurves((3.0, 2.0, 1.5), ((0, 4.0), (2, 2.5))).rows()
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[0] == {"step": 0, "train_loss": None, "heldout_loss": 4.0}
    assert rows[2] == {"step": 2, "train_loss": 2.0, "heldout_loss": 2.5}
    assert rows[3]["heldout_loss"] is None
    assert R.LossCurves((), ((0, 4.0),)).rows() == [{"step": 0, "train_loss": None, "heldout_loss": 4.0}]
