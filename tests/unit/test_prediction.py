"""The next-token distribution, sampling settings, top-p curve and their figures."""
import math

import numpy as np
import pytest
import torch

from dataclasses import replace

import explainer
from explainer import tokens
from explainer.analysis import prediction as P
from explainer.figures import prediction as figs
from explainer.text import texts
from explainer.view import View

LOGITS = torch.tensor([4.0, 3.0, 2.5, 1.0, 0.0, -1.0, -3.0])
T = {k: k for k in ("before", "after", "kept", "removed", "axis_prob", "prob", "cumulative", "axis_rank")}
T.update(trained="trained {bits:.2f}", untrained="untrained {bits:.2f}")
VIEW = View(T, texts("common", "en"))


def _np_softmax(x, temp=1.0):
    z = np.asarray(x, dtype=np.float64) / temp
    e = np.exp(z - z.max())
    return e / e.sum()


def test_softmax_and_temperature_match_numpy():
    for temp in (0.5, 1.0, 2.0):
        assert P.softmax_probs(LOGITS, temp).numpy() == pytest.approx(_np_softmax(LOGITS, temp))
    with pytest.raises(ValueError):
        P.softmax_probs(LOGITS, 0)


def test_top_k_and_top_p_brute_force():
    p = _np_softmax(LOGITS)
    out = P.adjusted_probs(LOGITS, top_k=2).numpy()
    want = np.where(np.arange(7) < 2, p, 0)
    assert out == pytest.approx(want / want.sum())
    # top-p: smallest prefix whose mass reaches p (the sorted order equals the index order here)
    for top_p in (0.3, 0.6, 0.9, 0.99):
        n = int(np.searchsorted(np.cumsum(p), top_p) + 1)
        out = P.adjusted_probs(LOGITS, top_p=top_p).numpy()
        assert (out > 0).sum() == n
        assert out[:n] == pytest.approx(p[:n] / p[:n].sum())


def test_distribution_summary():
    d = P.next_token_distribution(LOGITS, temperature=1.0, top_k=3, show=5)
    p = _np_softmax(LOGITS)
    assert d.top_ids == (0, 1, 2, 3, 4) and d.kept == 3 and d.vocab_size == 7
    assert d.entropy_bits == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert d.top_adjusted[3:] == (0.0, 0.0)
    flat = P.next_token_distribution(torch.zeros(1024))
    assert flat.entropy_bits == pytest.approx(10.0)


def test_sample_is_seeded_and_stays_in_support():
    probs = P.adjusted_probs(LOGITS, temperature=2.0, top_k=3)
    draws = [P.sample(probs, s) for s in range(50)]
    assert set(draws) <= {0, 1, 2} and len(set(draws)) > 1
    assert draws == [P.sample(probs, s) for s in range(50)]


def test_nucleus_curve():
    c = P.nucleus_curve(LOGITS, top_p=0.9, show=5)
    p = _np_softmax(LOGITS)
    assert c.ids == (0, 1, 2, 3, 4) and c.cumulative == pytest.approx(np.cumsum(p)[:5])
    n = int(np.searchsorted(np.cumsum(p), 0.9) + 1)
    assert c.kept == tuple(i < n for i in range(5))
    k2 = P.nucleus_curve(LOGITS, top_k=2, show=4)
    assert k2.cumulative[1] == pytest.approx(1.0) and k2.kept == (True, True, False, False)


def test_token_labels(tiny_gpt2):
    ids = tiny_gpt2.tokenizer(" Paris")["input_ids"]
    assert tokens.token_labels(tiny_gpt2, ids) == (" Paris",)


def test_next_token_labels_its_candidates(tiny_gpt2):
    tr = explainer.trace(tiny_gpt2, "The capital of France is")
    d = P.next_token(tiny_gpt2, tr, show=6)
    assert d.top_ids == P.next_token_distribution(tr.next_token_logits, show=6).top_ids
    assert d.top_labels == tokens.token_labels(tiny_gpt2, d.top_ids) and len(d.top_bytes) == 6
    assert d.context == b"" and [r["token"] for r in d.rows()] == list(d.top_labels)
    c = P.nucleus(tiny_gpt2, tr, show=4)
    assert c.labels == tokens.token_labels(tiny_gpt2, c.ids) and c.rows()[0]["cumulative"] == c.cumulative[0]


def test_a_byte_of_a_character_says_so_on_hover():
    d = replace(P.next_token_distribution(LOGITS, show=3), top_labels=("<0xE7>", "a", "<0x8C>"),
                top_bytes=(b"\xe7", b"a", b"\x8c"), context=b"")
    hover = figs.distribution_figure(d, VIEW).data[0].customdata
    assert hover[0][5] == "<br><i>first of 3 bytes of a character</i>" and hover[1][5] == ""
    after_lead = replace(d, context=b"\xe7")                          # the prompt ended with that first byte
    assert "second of 3 bytes" in figs.distribution_figure(after_lead, VIEW).data[0].customdata[2][5]


def test_figures_structure():
    d = P.next_token_distribution(LOGITS, top_k=2, show=5)
    labels = ("<0xE7>", "a", "a", "b", "c")
    fig = figs.distribution_figure(replace(d, top_labels=labels), VIEW)
    assert [tr.name for tr in fig.data] == ["before", "after"]
    assert len(set(fig.data[0].y)) == 5 and "&lt;0xE7&gt;" in fig.data[0].y[0]
    assert list(fig.data[1].marker.color) == [figs.KEPT] * 2 + [figs.REMOVED] * 3
    assert "%{customdata[1]:.4%}" in fig.data[0].hovertemplate
    c = P.nucleus_curve(LOGITS, top_p=0.5, show=7)
    nf = figs.nucleus_figure(replace(c, labels=tuple("abcdefg")), VIEW)
    assert list(nf.data[0].y) == pytest.approx(c.cumulative) and nf.layout.shapes[0].y0 == 0.5
    trained = replace(P.next_token_distribution(LOGITS, show=3), top_labels=labels[:3])
    untrained = replace(P.next_token_distribution(torch.zeros(7), show=3), top_labels=tuple("xyz"))
    cf = figs.compare_figure(P.TrainedVsUntrained(trained, untrained, True), VIEW)
    assert len(cf.data) == 2 and len(cf.data[0].x) == 3
    assert cf.layout.annotations[1].text == f"untrained {math.log2(7):.2f}"
