"""Attention windows, head statistics (against brute force) and figure structure."""
import math

import numpy as np
import pytest
import torch

import explainer

from explainer.analysis import attention as att
from explainer.analysis import head_rows
from explainer.figures import attention as figs
from explainer.view import View

VIEW = View.of("attention")


def _causal_softmax(T: int, H: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(H, T, T, generator=gen) * 2
    return torch.softmax(scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf")), -1)


def _brute_force(a: np.ndarray, ids: list[int]) -> dict[str, np.ndarray]:
    H, T, _ = a.shape
    out = {k: np.zeros(H) for k in att.STATS}
    for h in range(H):
        ent = [-sum(p * math.log2(p) for p in a[h, i, : i + 1] if p > 0) for i in range(1, T)]
        out["entropy"][h] = np.mean(ent)
        out["previous"][h] = np.mean([a[h, i, i - 1] for i in range(1, T)])
        out["first"][h] = np.mean([a[h, i, 0] for i in range(1, T)])
        per_query = []
        for i in range(T):
            copies = [j for j in range(i) if ids[j] == ids[i] and j + 1 < i]
            if copies:
                per_query.append(sum(a[h, i, j + 1] for j in copies))
        out["induction"][h] = np.mean(per_query) if per_query else np.nan
    return out


def test_stats_match_brute_force():
    a = _causal_softmax(12)
    ids = [5, 7, 9, 5, 7, 9, 5, 1, 7, 7, 2, 9]
    got = att.layer_head_stats(a, torch.tensor(ids))
    want = _brute_force(a.double().numpy(), ids)
    for name in att.STATS:
        np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=name)


def test_stats_of_handmade_heads():
    T = 6
    prev = torch.zeros(T, T)
    prev[0, 0] = 1
    prev[torch.arange(1, T), torch.arange(T - 1)] = 1
    first = torch.zeros(T, T)
    first[:, 0] = 1
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
    stats = att.layer_head_stats(torch.stack([prev, first, uniform]), torch.tensor([1, 2, 3, 4, 5, 6]))
    np.testing.assert_allclose(stats["previous"], [1, 0.2, np.mean([1 / (i + 1) for i in range(1, T)])])
    np.testing.assert_allclose(stats["first"][:2], [0.2, 1])
    np.testing.assert_allclose(stats["entropy"], [0, 0, np.mean([math.log2(i + 1) for i in range(1, T)])], atol=1e-6)
    assert np.isnan(stats["induction"]).all()                    # no token repeats


def test_induction_head_is_found():
    ids = torch.tensor([3, 8, 4, 6, 3, 8, 4, 6])                 # a sequence seen twice
    T = len(ids)
    induction = torch.zeros(T, T)
    for i in range(T):
        induction[i, i - 3 if i >= 4 else 0] = 1                 # second half reads the token after the earlier copy
    stats = att.layer_head_stats(torch.stack([induction, _causal_softmax(T, 1)[0]]), ids)
    assert stats["induction"][0] == pytest.approx(1.0)
    assert stats["induction"][1] < 0.9


def test_best_heads():
    z = np.zeros((3, 4))
    stats = att.HeadStats(entropy=z + 2, previous=z.copy(), first=z.copy(), induction=np.full((3, 4), np.nan))
    stats.previous[2, 1] = 0.9
    stats.first[0, 3] = 0.8
    stats.entropy[1, 2] = 0.1
    assert att.most_previous_token_head(stats) == (2, 1)
    assert att.most_first_token_head(stats) == (0, 3)
    assert att.most_focused_head(stats) == (1, 2)
    assert att.most_induction_head(stats) is None
    with pytest.raises(ValueError):
        stats.get("nope")


def test_windows():
    assert att.window_for(10) == att.Window(0, 10)
    assert att.window_for(1000, 950, 128) == att.Window(872, 1000)
    assert att.window_around(1000, 500) == att.Window(373, 501)
    assert att.window_around(1000, 20) == att.Window(0, 128)
    assert 500 in att.window_around(1000, 500) and 501 not in att.window_around(1000, 500)


@pytest.fixture(scope="module")
def traced(tiny_gpt2):
    return explainer.trace(tiny_gpt2, "The capital of France is Paris. The capital of Germany is")


def test_pattern_and_reads(traced):
    tr = traced
    w = att.Window(3, 9)
    p = att.pattern(tr, 1, window=w)
    own = tr.attention(1)[:, 3:9, 3:9].numpy()
    assert p.weights.shape == (tr.n_heads, 6, 6) and p.tokens == tr.tokens[3:9]
    assert np.isnan(p.weights[:, 0, 1]).all() and p.masked[0, 1] and not p.masked[1, 0]
    np.testing.assert_allclose(np.nan_to_num(p.weights), own, atol=1e-7)
    assert (p.row_mass() <= 1 + 1e-6).all()
    r = att.reads(tr, 1, 2, 7)
    np.testing.assert_allclose(r.weights, tr.attention(1)[2, 7, :8].numpy())
    top = r.top(3)
    assert len(top) == 3 and top[0][1] == pytest.approx(r.weights.max())
    assert r.share_before(3) == pytest.approx(r.weights[:3].sum())


def test_head_stats_of_trace_and_cache(traced):
    stats = att.head_stats(traced)
    assert stats.previous.shape == (traced.n_layers, traced.n_heads)
    cached = att.cached_head_stats(traced)
    assert att.cached_head_stats(traced) is cached
    np.testing.assert_allclose(cached.first, stats.first)
    assert not np.isnan(stats.induction).any()                    # " capital", " of", " is" repeat


def test_heatmap_structure_and_escaping():
    tokens = ("<0xE7>", " <b>", "x", "y")
    a = _causal_softmax(4, 2).numpy()
    masked = np.triu(np.ones((4, 4), bool), 1)
    p = att.Pattern(0, (0, 1), att.Window(0, 4), tokens, np.where(masked[None], np.nan, a), masked)
    fig = figs.attention_heatmap(p, VIEW, head=1, query=2)
    grey, weights = fig.data
    assert grey.type == weights.type == "heatmap"
    assert grey.z[0][1] == 0 and np.isnan(grey.z[1][0])              # masked cells drawn grey, marked ×
    assert grey.text[0][1] == "×" and grey.showlegend and VIEW.t["legend_masked"] in grey.name
    big = att.Pattern(0, (0,), att.Window(0, 40), tuple("t") * 40, np.full((1, 40, 40), np.nan),
                      np.triu(np.ones((40, 40), bool), 1))
    hatched = figs.attention_heatmap(big, VIEW).data[0]                # no room for marks: a hatch
    assert {hatched.z[0][1], hatched.z[0][2]} == {0, 1} and hatched.text is None
    assert np.isnan(weights.z[0][1]) and weights.z[1][0] == pytest.approx(a[1, 1, 0], abs=1e-4)
    assert "%{z:.4f}" in weights.hovertemplate and "%{y}" in weights.hovertemplate
    assert weights.x[0] == "0: &lt;0xE7&gt;" and weights.x[1] == "1: ␣&lt;b&gt;"
    assert len(fig.layout.shapes) == 1                            # the chosen query row
    grid = figs.head_grid(p, VIEW, head=1)
    assert len(grid.data) == 2 and all(d.coloraxis == "coloraxis" for d in grid.data)
    assert "head 1" in grid.data[1].hovertemplate


def test_arcs_and_stats_figures():
    weights = np.array([0.5, 0.1, 0.0, 0.4])
    r = att.Reads(0, 0, 3, weights, ("a", "b", "c", "d", "e"), att.Window(0, 5))
    fig = figs.reads_arcs(r, VIEW)
    lines = [d for d in fig.data if d.mode == "lines"]
    assert len(lines) == 3                                          # keys with weight ≥ 0.005
    assert max(d.line.width for d in lines) == pytest.approx(1 + 12 * 0.5)
    assert "0.5000" in lines[-1].hovertemplate
    z = np.random.default_rng(0).random((5, 3))
    stats = att.HeadStats(z, z, z, np.full((5, 3), np.nan))
    sfig = figs.head_stats_figure(stats, VIEW, mark=(1, 2))
    assert len(sfig.data) == 4 and all("layer %{y}" in d.hovertemplate for d in sfig.data)


def test_long_window_figure_size():
    W, H = 128, 9
    a = _causal_softmax(W, H).numpy()
    masked = np.triu(np.ones((W, W), bool), 1)
    p = att.Pattern(0, tuple(range(H)), att.Window(896, 1024), tuple(f"tok{i}" for i in range(W)),
                    np.where(masked[None], np.nan, a), masked)
    size = len(figs.attention_heatmap(p, VIEW).to_json()) + len(figs.head_grid(p, VIEW).to_json())
    assert size < 1_500_000


@pytest.mark.parametrize("chunked", [False, True])
def test_streamed_stats_equal_stats_of_the_whole_pattern(tiny_model, monkeypatch, chunked):
    from explainer import blocks
    if chunked:                                                 # no fused kernel: many small chunks of rows
        monkeypatch.setattr(head_rows, "_fused_summaries", lambda parts: None)
        monkeypatch.setattr(blocks, "CHUNK_BYTES", 512)
    text = "the cat and the dog and the cat and the dog sat on the mat of the cat " * 2
    tr = explainer.trace(tiny_model, text)
    streamed = att.head_stats(tr)
    for layer in range(tr.n_layers):
        whole = att.layer_head_stats(tr.attention(layer), tr.token_ids)
        for name in att.STATS:
            np.testing.assert_allclose(streamed.get(name)[layer], whole[name], rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_long_text_averages_over_an_even_sample_of_exact_rows(tiny_model, monkeypatch, chunked):
    from explainer import blocks
    if chunked:
        monkeypatch.setattr(head_rows, "_fused_summaries", lambda parts: None)
        monkeypatch.setattr(blocks, "CHUNK_BYTES", 512)
    monkeypatch.setattr(head_rows, "EXACT_ROWS", 20)
    monkeypatch.setattr(head_rows, "SAMPLED_ROWS", 9)
    text = "the cat and the dog and the cat and the dog sat on the mat of the cat " * 2
    tr = explainer.trace(tiny_model, text)
    rows = head_rows.query_rows(tr.n_tokens, sample=True)
    assert rows.numel() == 9 and int(rows[0]) == 1 and int(rows[-1]) == tr.n_tokens - 1
    assert not att.head_stats(tr).sampled                               # exact unless a sample is asked for
    streamed = att.head_stats(tr, sample=True)
    assert streamed.sampled and (streamed.rows_read, streamed.n_rows) == (9, tr.n_tokens - 1)
    assert not att.cached_head_stats(tr).sampled and att.head_stats_ready(tr)
    assert not att.cached_head_stats(tr, sample=True).sampled           # once exact is there, it is used
    for layer in range(tr.n_layers):
        a = tr.attention(layer).double()                                # (H, T, T), the whole pattern
        sub = a[:, rows]                                                # the sampled query rows
        entropy = torch.special.entr(sub).sum(-1).mean(-1) / np.log(2)
        previous = a[:, rows, rows - 1].mean(-1)
        np.testing.assert_allclose(streamed.entropy[layer], entropy.numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(streamed.previous[layer], previous.numpy(), rtol=1e-5, atol=1e-7)
        ids = tr.token_ids.long()
        per, has = [], []
        for i in rows.tolist():
            keys = [j + 1 for j in range(i) if ids[j] == ids[i] and j + 1 < i]
            if keys:
                per.append(a[:, i, keys].sum(-1))
        if per:
            np.testing.assert_allclose(streamed.induction[layer], torch.stack(per, -1).mean(-1).numpy(),
                                       rtol=1e-5, atol=1e-7)
