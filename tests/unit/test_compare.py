"""Comparing two next-token distributions, head maps and answer growth; parsing switched-off parts."""
import numpy as np
import pytest
import torch

from dataclasses import replace

from explainer.analysis.compare import compare_distributions, compare_head_maps
from explainer.figures.compare import distribution_change_figure, head_maps_figure
from explainer.ui.frame.params import heads_from_url as parse_heads
from explainer.ui.frame.params import heads_to_url as format_heads
from explainer.ui.frame.params import layers_from_url as parse_layers
from explainer.view import View

COMPARE = View.of("compare").adding(right="b", before="normal", after="off", chart_title="", prob="p")


def test_identical_distributions_do_not_move():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, -3.0])
    change = compare_distributions(logits, logits.clone(), k=3)
    assert change.kl_bits == pytest.approx(0, abs=1e-12) and change.total_variation == pytest.approx(0, abs=1e-12)
    assert not change.top_changed and all(d == 0 for d in change.delta)


def test_changed_distribution_matches_a_hand_computation():
    before = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    after = torch.log(torch.tensor([0.2, 0.3, 0.5]))
    change = compare_distributions(before, after, k=2)
    assert set(change.ids) == {0, 1, 2}                              # union of both top-2 lists
    assert change.top_before == 0 and change.top_after == 2 and change.top_changed
    assert change.total_variation == pytest.approx(0.3)
    expected_kl = 0.5 * np.log2(0.5 / 0.2) + 0.2 * np.log2(0.2 / 0.5)
    assert change.kl_bits == pytest.approx(expected_kl)
    row = change.ids.index(2)
    assert change.before[row] == pytest.approx(0.2) and change.after[row] == pytest.approx(0.5)


def test_vocabularies_must_match():
    with pytest.raises(ValueError):
        compare_distributions(torch.zeros(5), torch.zeros(6))


def test_parse_heads_and_layers_keep_valid_parts_and_report_the_rest():
    heads, bad = parse_heads("3.5, 0.0,99.1,x,2.9, 4.", n_layers=30, n_heads=9)
    assert heads == {(3, 5), (0, 0)} and bad == ["99.1", "x", "2.9", "4."]
    assert format_heads(heads) == "0.0,3.5"
    layers, bad = parse_layers("2,7,,31,-1,a", n_layers=30)
    assert layers == {2, 7} and bad == ["31", "-1", "a"]


class _Stats:
    def __init__(self, values):
        self.values = values

    def get(self, name):
        return self.values


def test_head_maps_difference_only_for_the_same_shape():
    same = compare_head_maps(_Stats(np.zeros((2, 3))), _Stats(np.ones((2, 3))), "previous")
    assert np.array_equal(same.difference, np.ones((2, 3)))
    other = compare_head_maps(_Stats(np.zeros((30, 9))), _Stats(np.ones((4, 4))), "previous")
    assert other.difference is None
    assert len(head_maps_figure(same, COMPARE).data) == 3
    assert len(head_maps_figure(other, COMPARE).data) == 2


def test_change_figure_shows_both_sides_with_exact_hover():
    change = compare_distributions(torch.log(torch.tensor([0.6, 0.4])), torch.log(torch.tensor([0.1, 0.9])), k=2)
    fig = distribution_change_figure(replace(change, labels=("<0xE7>", " Paris")), COMPARE)
    assert [bar.name for bar in fig.data] == ["normal", "off"]
    assert list(fig.data[0].x) == ["&lt;0xE7&gt;", "␣Paris"]          # the one rule, escaped for plotly
    assert "customdata[3]:+.4f" in fig.data[1].hovertemplate
    assert fig.data[1].text[0] == f"{change.delta[0]:+.3f}"
