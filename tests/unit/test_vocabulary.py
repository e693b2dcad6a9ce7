"""Embeddings-page library: vocabulary map cache, lookup, neighbours, analogy, figures."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explainer import tokens
from explainer.analysis import vocab_map as vm
from explainer.analysis import vocabulary as voc
from explainer.figures import vocabulary as vfig
from explainer.view import View

VIEW = View.of("embeddings")

V, D = 300, 16


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture
def planted() -> tuple[torch.Tensor, list[str]]:
    """man/woman/king/queen on orthonormal axes so king − man + woman = queen exactly."""
    g = torch.Generator().manual_seed(0)
    e = torch.zeros(V, D)
    e[:, 3:] = torch.randn(V, D - 3, generator=g)          # the crowd lives in dims 3..15
    e0, e1, e2 = torch.eye(D)[:3]
    e[0], e[1], e[2], e[3] = e0 + e1, e0 - e1, e2 + e1, e2 - e1
    e[4] = 0.9 * (e2 - e1) + 0.1 * torch.eye(D)[5]          # a near-queen
    labels = ["␣man", "␣woman", "␣king", "␣queen", "␣princess"] + [f"t{i}" for i in range(5, V)]
    return e, labels


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_EXPLAINER_CACHE", str(tmp_path))
    return tmp_path


class FakeByteTokenizer:
    """A GPT-2-style byte-level tokenizer over a handmade vocabulary."""

    vocab = ["<|endoftext|>", "Ġcat", "cat", "Ġdog", "Ġh", "amb", "urger", "ç", "Ċ",
             "ï¿½", "Ġ", "dog", "Ġä½ł"]
    added_tokens_decoder = {0: "<|endoftext|>"}
    all_special_ids = [0]
    words = {" cat": [1], "cat": [2], " dog": [3], "dog": [11], " hamburger": [4, 5, 6],
             "hamburger": [4, 5, 6], " 你": [12], "你": [7, 8], " 猫": [10, 7], "猫": [7, 9]}

    def __len__(self) -> int:
        return len(self.vocab)

    def convert_ids_to_tokens(self, ids):
        return [self.vocab[i] for i in ids]

    def encode(self, text, add_special_tokens=False):
        return list(self.words.get(text, []))


def fake_layout(calls: list):
    def _layout(x, progress):
        calls.append(x.shape)
        return x[:, :2].numpy().astype(np.float32).copy()
    return _layout


# ----------------------------------------------------------------------- vocabulary map
def test_cache_round_trip_does_not_recompute(planted, cache, monkeypatch):
    e, _ = planted
    steps: list[tuple[float, str]] = []
    first = vm.build_vocab_map(e, "tiny/model", lambda f, m: steps.append((f, m)))
    assert first.method == "umap" and first.coords.shape == (V, 2)
    assert first.coords.dtype == np.float32 and not first.from_cache
    assert [m for _, m in steps][0] == "cache" and steps[-1] == (1.0, "done")
    assert all(a <= b for (a, _), (b, _) in zip(steps, steps[1:]))   # monotone progress
    assert list(cache.glob("vocab_maps/*.npz"))

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")
    monkeypatch.setattr(vm, "_umap_2d", boom)
    again = vm.build_vocab_map(e, "tiny/model")
    loaded = vm.load_vocab_map("tiny/model")
    assert again.from_cache and loaded is not None and loaded.method == "umap"
    np.testing.assert_array_equal(again.coords, first.coords)
    np.testing.assert_array_equal(loaded.coords, first.coords)


def test_stale_cache_is_rebuilt(planted, cache, monkeypatch):
    e, _ = planted
    calls: list = []
    monkeypatch.setattr(vm, "_umap_2d", fake_layout(calls))
    vm.build_vocab_map(e, "k")
    vm.build_vocab_map(e, "k")
    assert len(calls) == 1
    assert vm.load_vocab_map("k", e * 2) is None           # a different matrix
    vm.build_vocab_map(e * 2, "k")
    assert len(calls) == 2
    assert vm.load_vocab_map("missing") is None


def test_tiny_vocabulary_falls_back_to_pca(cache, monkeypatch):
    calls: list = []
    monkeypatch.setattr(vm, "_umap_2d", fake_layout(calls))
    e = torch.randn(12, 8, generator=torch.Generator().manual_seed(1))
    vmap = vm.build_vocab_map(e, "tiny")
    assert vmap.method == "pca" and vmap.coords.shape == (12, 2) and not calls
    one_dim = vm.build_vocab_map(torch.randn(5, 1), "one-dim")   # d < 2 still gives 2-D
    assert one_dim.coords.shape == (5, 2)


def test_concurrent_builds_wait_for_one(planted, cache, monkeypatch):
    """A classroom: many sessions ask at once; one builds, the others wait and load it."""
    import threading
    import time as _time
    e, _ = planted
    calls: list = []
    slow = fake_layout(calls)
    monkeypatch.setattr(vm, "_umap_2d", lambda x, p: (_time.sleep(0.3), slow(x, p))[1])
    phases: list[list[str]] = [[] for _ in range(4)]
    results: list = [None] * 4

    def run(i: int) -> None:
        results[i] = vm.build_vocab_map(e, "shared", lambda f, m: phases[i].append(m))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sum(not r.from_cache for r in results) == 1
    assert sum("wait" in p for p in phases) == 3
    for r in results:
        np.testing.assert_array_equal(r.coords, results[0].coords)


def test_save_vocab_map_writes_a_loadable_map(planted, cache):
    e, _ = planted
    coords = np.zeros((V, 2), dtype=np.float32)
    path = vm.save_vocab_map(vm.VocabMap("fixture", coords, "umap", D, 0.5, False), e)
    assert path.exists()
    loaded = vm.load_vocab_map("fixture", e)
    assert loaded is not None and loaded.from_cache and loaded.build_seconds == 0.5
    assert vm.load_vocab_map("fixture", e[:, :4]) is None       # other d_model: stale


# ------------------------------------------------------------------- labels and lookup
class FakeModel:
    """What the label functions read from a LoadedModel: its tokenizer, lock and vocabulary size."""

    def __init__(self, tokenizer, vocab_size: int) -> None:
        import threading
        self.tokenizer, self.vocab_size, self.lock = tokenizer, vocab_size, threading.Lock()
        self.tokenizer_lock = threading.RLock()


def test_token_labels_are_legible_and_consistent():
    labels = tokens.vocabulary_labels(FakeModel(FakeByteTokenizer(), vocab_size=15))
    assert labels[:4] == ("<|endoftext|>", " cat", "cat", " dog")
    assert labels[7] == "<0xE7>" and labels[8] == "↵"
    assert labels[9] == "<0xEF><0xBF><0xBD>" and labels[10] == " " and labels[12] == " 你"
    assert labels[13:] == ("<unused 13>", "<unused 14>")
    assert not any("�" in s for s in labels)
    assert [tokens.shown(s) for s in labels[1:4]] == ["␣cat", "cat", "␣dog"]       # on screen
    assert tokens.shown(labels[10]) == "␣" and tokens.shown("") == "∅"


def test_lookup_word_prefers_single_token_and_flags_splits():
    tok = FakeByteTokenizer()
    cat = voc.lookup_word(tok, "  cat ")
    assert (cat.text, cat.ids, cat.pieces, cat.split) == (" cat", (1,), (" cat",), False)
    burger = voc.lookup_word(tok, "hamburger")
    assert burger.split and burger.ids == (4, 5, 6) and burger.pieces == (" h", "amb", "urger")
    with pytest.raises(ValueError):
        voc.lookup_word(tok, "   ")
    # Chinese is written without spaces: its mid-sentence form has no space in front
    cat_zh = voc.lookup_word(tok, "猫")
    assert (cat_zh.text, cat_zh.ids, cat_zh.split) == ("猫", (7, 9), True)
    assert voc.lookup_word(tok, "你").ids == (12,)          # a single token still wins


# ------------------------------------------------------------- neighbours and analogies
def test_nearest_neighbours_match_brute_force():
    g = torch.Generator().manual_seed(2)
    e = torch.randn(V, D, generator=g)
    labels = [f"t{i}" for i in range(V)]
    unit = e.numpy() / np.linalg.norm(e.numpy(), axis=1, keepdims=True)
    for query in (7, 123):
        sims = unit @ unit[query]
        sims[query] = -np.inf
        want = np.argsort(-sims)[:10]
        got = voc.nearest_neighbours(e, labels, query, k=10)
        assert list(got.ids) == list(want)
        np.testing.assert_allclose(got.similarities, sims[want], rtol=1e-5, atol=1e-6)
        assert got.labels == tuple(labels[i] for i in want)
    vec = torch.randn(D, generator=g)
    got = voc.nearest_neighbours(e, labels, vec, k=5, exclude=(0, 1))
    sims = unit @ (vec.numpy() / np.linalg.norm(vec.numpy()))
    sims[[0, 1]] = -np.inf
    assert list(got.ids) == list(np.argsort(-sims)[:5])


def test_analogy_finds_planted_answer_and_reports_honestly(planted):
    e, labels = planted
    res = voc.analogy(e, labels, 2, 0, 1, k=5, expected=3)     # king − man + woman
    assert res.excluded.ids[0] == 3 and res.excluded.similarities[0] == pytest.approx(1.0)
    assert not set(res.excluded.ids) & {0, 1, 2}
    assert res.expected_rank_excluded == 1 and res.expected_rank_included == 1
    assert res.expected_similarity == pytest.approx(1.0, abs=1e-5)
    assert res.included.ids[0] == 3 and res.excluded.query == "␣king − ␣man + ␣woman"
    # ask for an expected answer that is one of the inputs: no "excluded" rank exists
    res2 = voc.analogy(e, labels, 2, 0, 1, k=V, expected=2)
    assert res2.expected_rank_excluded is None and res2.expected_rank_included is not None
    assert len(res2.excluded.ids) == V - 3 and len(res2.included.ids) == V


def test_pair_similarity_uses_mean_of_pieces(planted):
    e, _ = planted
    king = voc.WordTokens("king", " king", (2,), ("␣king",))
    queen = voc.WordTokens("queen", " queen", (3,), ("␣queen",))
    split = voc.WordTokens("royal", " royal", (2, 3), ("␣ro", "yal"))
    out = voc.pair_similarity(e, [(king, queen), (king, split)])
    assert out[0].similarity == pytest.approx(0.0, abs=1e-6)
    assert out[1].similarity == pytest.approx(float(torch.nn.functional.cosine_similarity(
        e[2], (e[2] + e[3]) / 2, dim=0)), rel=1e-6)
    assert out[1].second.split


# ---------------------------------------------------------------------------- figures
def test_vocab_map_figure_traces_and_size():
    n = 49152
    coords = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    vmap = vm.VocabMap("x", coords, "umap", 576, 1.0, False)
    labels = [f"tok{i}" for i in range(n)]
    labels[5] = "<0xE7>"
    fig = vfig.vocab_map_figure(vm.MapHighlights(vmap, tuple(labels), prompt_ids=(5, 9, 5), neighbour_ids=(11,)), VIEW)
    assert [t.type for t in fig.data] == ["scattergl"] * 3
    assert len(fig.data[0].x) == n and len(fig.data[1].x) == 1 and len(fig.data[2].x) == 2
    assert fig.data[0].hovertext[5] == "&lt;0xE7&gt;"          # the HTML hover would eat "<0xE7>"
    assert list(fig.data[2].text) == ["<0xE7>", "tok9"]         # drawn as WebGL glyphs: the plain label
    for t in fig.data:
        assert "%{hovertext}" in t.hovertemplate and "%{customdata}" in t.hovertemplate
    assert list(fig.data[2].customdata) == [5, 9]
    assert len(fig.to_json()) < 3_000_000


def test_bar_figures(planted):
    e, labels = planted
    nb = voc.nearest_neighbours(e, labels, 3, k=4)
    fig = vfig.neighbours_figure(nb, View.of("embeddings", presenter=True))
    assert len(fig.data) == 1 and len(fig.data[0].x) == 4
    assert "%{x:.4f}" in fig.data[0].hovertemplate and "customdata[0]" in fig.data[0].hovertemplate
    assert list(fig.layout.yaxis.ticktext) == list(nb.labels)
    king = voc.WordTokens("king", " king", (2,), ("␣king",))
    split = voc.WordTokens("royal", " royal", (2, 3), ("␣ro", "yal"))
    pairs = voc.pair_similarity(e, [(king, king), (king, split)])
    pf = vfig.pair_similarity_figure(pairs, VIEW)
    assert len(pf.data[0].y) == 2 and list(pf.data[0].marker.pattern.shape) == ["", "/"]
    assert "%{y:.4f}" in pf.data[0].hovertemplate
    res = voc.analogy(e, labels, 2, 0, 1, k=4, expected=3)
    af = vfig.analogy_figure(res, VIEW)
    assert len(af.data) == 2 and all(len(t.x) == 4 for t in af.data)
    assert af.data[0].marker.color[0] == vfig.theme.ACCENT     # queen, the expected answer


def test_token_vectors_heatmap():
    vec = torch.randn(4, D)
    pv = voc.PromptVectors(0, 4, (1, 2, 1, 3), (" the", " cat", " the", "<0xE7>"), vec.numpy())
    fig = vfig.token_vectors_heatmap(pv, VIEW)
    hm = fig.data[0]
    assert hm.type == "heatmap" and np.asarray(hm.z).shape == (4, D) and hm.zmid == 0
    assert len(set(hm.y)) == 4 and "%{z}" in hm.hovertemplate and "%{y}" in hm.hovertemplate
    assert hm.y[3] == "3: &lt;0xE7&gt;" and hm.y[0] == "0: ␣the"
    rows = pv.rows()
    assert rows[3]["token"] == "3: <0xE7>" and rows[0][D - 1] == pytest.approx(float(vec[0, D - 1]))



def test_a_big_vocabulary_lays_out_its_ordinary_part_and_places_the_rest(planted, cache, monkeypatch):
    e, _ = planted
    calls: list = []
    monkeypatch.setattr(vm, "_umap_2d", fake_layout(calls))
    monkeypatch.setattr(vm, "MAX_LAYOUT_TOKENS", 120)
    ordinary = np.ones(V, dtype=bool)
    ordinary[:10] = False                                        # say: special tokens
    vmap = vm.build_vocab_map(e, "big", ordinary=ordinary)
    assert calls == [(120, vm.PCA_DIMS)] and vmap.laid_out.sum() == 120
    assert not vmap.laid_out[:10].any() and vmap.laid_out[10:130].all() and not vmap.laid_out[130:].any()
    assert list(vmap.shown_ids) == list(range(10, 130))
    assert not vmap.has_place([200]) and vmap.has_place([50])
    loaded = vm.load_vocab_map("big", e)                         # laid_out and the PCA basis survive the cache
    np.testing.assert_array_equal(loaded.laid_out, vmap.laid_out)
    np.testing.assert_allclose(loaded.basis, vmap.basis)
    e2 = e.clone()
    e2[250] = e2[60] * 3.0                                       # token 250 points where 60 does
    placed = vm.place(loaded, e2, [3, 250, 60])
    assert placed.has_place([3, 250, 60]) and not placed.has_place([251])
    np.testing.assert_allclose(placed.coords[60], loaded.coords[60])   # laid-out tokens keep their place
    members = np.flatnonzero(loaded.laid_out)
    spread = np.linalg.norm(loaded.coords[members] - loaded.coords[60], axis=1)
    assert np.linalg.norm(placed.coords[250] - loaded.coords[60]) <= np.median(spread)
    assert vm.place(placed, e2, [250]) is placed                  # nothing left to place: the same map
