"""What the pages show of Gemma 3's new parts, on the tiny random Gemma 3 (3 layers: two local with an
8-token window and rotary base 10,000, one global with base 1,000,000; 4 query heads on 1 key/value head).

Local and global layers, the window's edge in the mask, the q·k steps with the model's own scale, both
rotary bases, the model card and the MLP's kind; every text builder in both languages.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import attention as att
from explainer.analysis import position as pos
from explainer.analysis.mlp import mlp_design
from explainer.analysis.overview import journey, model_card
from explainer.analysis.qk import difference_from_trace, qk_steps
from explainer.analysis.windows import LATER, OLDER, READS, layer_windows, mask_shape
from explainer.figures import attention as afigs
from explainer.figures import overview as ofigs
from explainer.figures import position as pfigs
from explainer.figures import windows as wfigs
from explainer.view import View
from explainer.words import attention as awords
from explainer.words import overview as owords
from explainer.words import position as pwords

LONG = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
LANGS = ("en", "zh")


@pytest.fixture(scope="module")
def gemma_trace(tiny_gemma3):
    tr = explainer.trace(tiny_gemma3, LONG)
    assert tr.n_tokens > 8                         # longer than the window: the window hides keys
    return tr


# ---------------------------------------------------------------- local and global layers


def test_layer_windows_say_which_layers_are_local(gemma_trace, tiny_gemma3, tiny_llama):
    lw = layer_windows(gemma_trace)
    assert lw.windows == (8, 8, None) and lw.thetas == (10_000.0, 10_000.0, 1_000_000.0)
    assert lw.local == (0, 1) and lw.global_layers == (2,) and lw.window == 8
    assert lw.is_local(0) and not lw.is_local(2) and lw.cuts(0) and not lw.cuts(2) and lw.period == 3
    assert [r["reads"] for r in lw.rows()] == ["window", "window", "all"]
    short = layer_windows(explainer.trace(tiny_gemma3, "a b"))
    assert not short.cuts(0)                       # a 3-token text: the window hides nothing yet
    plain = layer_windows(explainer.trace(tiny_llama, LONG))
    assert plain.local == () and plain.window is None and len(set(plain.thetas)) == 1 and plain.period is None
    from explainer.analysis.windows import LayerWindows
    assert LayerWindows((4,) * 5 + (None,), (None,) * 6, 9).period == 6     # Gemma's pattern, once
    assert LayerWindows((4, None, None, 4), (None,) * 4, 9).period is None


def test_pattern_hides_keys_older_than_the_window(gemma_trace):
    T = gemma_trace.n_tokens
    p = att.pattern(gemma_trace, 0, window=att.window_for(T))
    q, k = np.arange(T)[:, None], np.arange(T)[None, :]
    np.testing.assert_array_equal(p.outside, k <= q - 8)
    np.testing.assert_array_equal(p.masked, k > q)
    assert p.reach == 8 and np.isnan(p.weights[:, p.outside]).all()
    assert np.allclose(gemma_trace.attention(0)[:, p.outside].numpy(), 0)     # the model gives them exactly 0
    np.testing.assert_allclose(np.nansum(p.weights, -1), 1, atol=1e-5)      # all weight inside the window
    g = att.pattern(gemma_trace, 2, window=att.window_for(T))
    assert g.outside is None and g.reach is None and not np.isnan(g.weights[:, ~g.masked]).any()


def test_mask_shape_draws_the_window_edge(gemma_trace):
    lw = layer_windows(gemma_trace)
    m = mask_shape(lw, 0)
    assert m.span == max(gemma_trace.n_tokens, 16) and m.step == 1 and m.window == 8
    q, k = np.arange(m.n_cells)[:, None], np.arange(m.n_cells)[None, :]
    np.testing.assert_array_equal(m.cells == LATER, k > q)
    np.testing.assert_array_equal(m.cells == OLDER, k <= q - 8)
    assert (m.cells[(k <= q) & (k > q - 8)] == READS).all()
    g = mask_shape(lw, 2)
    assert not (g.cells == OLDER).any() and (g.cells[k <= q] == READS).all()
    big = mask_shape(lw, 0, max_cells=5)
    assert big.n_cells <= 5 and big.step * big.n_cells >= big.span
    assert set(m.rows()["legend"]) == {"reads", "later", "older"}
    with pytest.raises(ValueError):
        mask_shape(lw, 3)


@pytest.mark.parametrize("lang", LANGS)
def test_window_figures_and_words(gemma_trace, lang):
    view = View.of("attention", lang)
    lw = layer_windows(gemma_trace)
    strip = wfigs.layer_strip_html(lw, view, 2)
    assert strip.count("<span title=") == 3 and strip.count("font-weight:700") == 1   # one global layer, bold
    assert "2px solid" in strip.split("<span title=")[3]                               # the chosen layer outlined
    note = awords.layer_note(lw, view, 2)
    assert "2" in note and "8" in note and "{" not in note
    story = awords.mask_story(lw, view)
    assert str(gemma_trace.n_tokens) in story and "{" not in story
    assert view.t["globals_every"].format(period=3) in story
    shape = mask_shape(lw, 0)
    fig = wfigs.mask_shape_figure(shape, view)
    heats = [d for d in fig.data if d.type == "heatmap"]                  # one per kind of cell: read, later, older
    assert len(heats) == 3 and len([d for d in fig.data if d.showlegend]) == 3
    cells = np.stack([~np.isnan(np.asarray(h.z, dtype=float)) for h in heats])
    assert (cells.sum(0) == 1).all()                                      # every cell is exactly one kind
    assert [bool(cells[k][np.asarray(shape.cells) == kind].all()) for k, kind in enumerate((READS, LATER, OLDER))] \
        == [True, True, True]
    assert all("%{customdata}" not in h.hovertemplate for h in heats)
    assert view.t["mask_later"] in heats[1].hovertemplate and fig.layout.shapes[0].line.color
    assert len([d for d in wfigs.mask_shape_figure(mask_shape(lw, 2), view).data if d.type == "heatmap"]) == 2


@pytest.mark.parametrize("lang", LANGS)
def test_heatmap_marks_window_cells_apart_from_the_causal_mask(gemma_trace, lang):
    view = View.of("attention", lang)
    T = gemma_trace.n_tokens
    local = afigs.attention_heatmap(att.pattern(gemma_trace, 0, window=att.window_for(T)), view)
    assert len(local.data) == 3                                    # causal grey, window sand, weights
    grey, sand = local.data[0], local.data[1]
    assert grey.colorscale[0][1] == afigs.MASK_GREY and sand.colorscale[0][1] == afigs.WINDOW_SAND
    assert "8" in sand.hovertemplate and "{window}" not in sand.hovertemplate
    assert "·" in {c for row in sand.text for c in row}
    for mask, legend in ((grey, "legend_masked"), (sand, "legend_outside")):     # hatched, and in the legend
        assert mask.showlegend and view.t[legend].replace("{window}", "8") in mask.name
        assert set(np.unique(np.asarray(mask.z, dtype=float)[~np.isnan(np.asarray(mask.z, dtype=float))])) <= {0, 1}
    assert len(afigs.attention_heatmap(att.pattern(gemma_trace, 2, window=att.window_for(T)), view).data) == 2
    note = awords.mask_note(att.pattern(gemma_trace, 0, window=att.window_for(T)), view)
    assert note != view.t["mask_note"] and "8" in note
    assert awords.mask_note(att.pattern(gemma_trace, 2), view) == view.t["mask_note"]


def test_head_statistics_rows_say_local_or_global(gemma_trace, tiny_llama):
    view = View.of("attention")
    stats = att.head_stats(gemma_trace)
    assert stats.windows == (8, 8, None)
    fig = afigs.head_stats_figure(stats, view)
    assert list(fig.layout.yaxis.ticktext) == ["0 local", "1 local", "<b>2 global</b>"]
    plain = afigs.head_stats_figure(att.head_stats(explainer.trace(tiny_llama, "a b c")), view)
    assert plain.layout.yaxis.ticktext is None


# ---------------------------------------------------------------- the q·k steps


def test_steps_follow_the_models_scale_window_and_norms(gemma_trace, tiny_gemma3):
    T = gemma_trace.n_tokens
    s = qk_steps(tiny_gemma3, gemma_trace, 0, 1, T - 1)
    assert s.window == 8 and s.qk_norm and s.kv_heads == 1 and s.sharing == (0, 2, 3)
    assert s.scaled_by == "query_pre_attn_scalar" and s.scale_square == pytest.approx(16)
    old = torch.arange(T) <= T - 1 - 8
    assert torch.isinf(s.masked[old]).all() and (s.weights[old] == 0).all()
    assert s.visible.tolist() == (~old).tolist()
    assert difference_from_trace(s, gemma_trace) < 1e-5
    fig = afigs.qk_steps_figure(att.key_steps(s, gemma_trace, att.window_for(T)), View.of("attention"))
    bars = [d for d in fig.data if d.type == "bar"]
    assert bars[2].y[0] is None and bars[0].marker.color[0] != bars[0].marker.color[T - 1]   # old key muted
    titles = [a.text for a in fig.layout.annotations]
    assert "√16 = 4" in titles[1] and "8" in titles[2]


def test_steps_scale_of_other_families(tiny_llama, tiny_gpt2):
    for model in (tiny_llama, tiny_gpt2):
        tr = explainer.trace(model, "a b c d")
        s = qk_steps(model, tr, 0, 1, 3)
        assert s.scaled_by == "head_dim" and not s.qk_norm and s.window is None
        assert math.isclose(s.scale_square, model.head_dim, rel_tol=1e-6)


@pytest.mark.parametrize("lang", LANGS)
def test_steps_text_names_what_this_model_does(gemma_trace, tiny_gemma3, tiny_llama, lang):
    view = View.of("attention", lang)
    gemma = awords.steps_text(qk_steps(tiny_gemma3, gemma_trace, 0, 1, gemma_trace.n_tokens - 1), view)
    assert "query_pre_attn_scalar" in gemma and view.t["norm_note"] in gemma and "{" not in gemma
    assert view.t["kv_note_single"].format(heads=4) in gemma
    assert view.t["window_note_steps"].format(window=8) in gemma
    tr = explainer.trace(tiny_llama, "a b c d")
    llama = awords.steps_text(qk_steps(tiny_llama, tr, 0, 1, 3), view)
    assert "query_pre_attn_scalar" not in llama and view.t["norm_note"] not in llama
    assert view.t["kv_note"].format(head=1, kv=0, group="0") in llama and "{" not in llama


# ---------------------------------------------------------------- both rotary bases


def test_both_rotary_bases_with_their_layers(gemma_trace, tiny_gemma3):
    b = pos.rotary_bases(gemma_trace, tiny_gemma3.context_length)
    assert [f.theta for f in b.bases] == [10_000.0, 1_000_000.0]
    assert b.layers == ((0, 1), (2,)) and b.windows == (8, None) and b.context == 256
    rotary = tiny_gemma3.hf_model.model.rotary_emb
    for f, kind in zip(b.bases, ("sliding_attention", "full_attention")):
        own = getattr(rotary, f"{kind}_inv_freq").double().numpy()
        np.testing.assert_allclose(f.wavelength, 2 * np.pi / own, rtol=1e-6)
    assert b.bases[1].wavelength[-1] > 50 * b.bases[0].wavelength[-1]          # the global base turns far slower
    assert b.slow_pairs(1, 256) > b.slow_pairs(0, 256)
    assert {r["theta"] for r in b.rows()} == {10_000.0, 1_000_000.0}


def test_distance_curves_for_each_base(gemma_trace, tiny_gemma3):
    b = pos.rotary_bases(gemma_trace, tiny_gemma3.context_length)
    c = pos.distance_curves(b, gemma_trace.n_tokens)
    assert c.thetas == (10_000.0, 1_000_000.0) and c.windows == (8, None)
    d = c.curves[0].distance
    assert d[0] == 0 and d[-1] == 256 and (np.diff(d) > 0).all()
    for curve, f in zip(c.curves, b.bases):
        want = [np.mean(np.cos(x * f.inv_freq)) for x in d]
        np.testing.assert_allclose(curve.average, want, atol=1e-9)
    assert c.curves[1].average_at(200) > c.curves[0].average_at(200)          # the large base fades slower
    for curve in c.curves:                                                   # smoothing keeps the trend
        assert curve.smoothed[0] == 1 and np.abs(curve.smoothed - curve.average).max() < 0.4   # 8 pairs: big wiggles
        assert np.abs(np.diff(curve.smoothed[64:])).max() < np.abs(np.diff(curve.average[64:])).max()
    assert len(c.rows()) == 2 * len(d)


@pytest.mark.parametrize("lang", LANGS)
def test_position_figures_and_words_for_two_bases(gemma_trace, tiny_gemma3, lang):
    view = View.of("position", lang)
    b = pos.rotary_bases(gemma_trace, tiny_gemma3.context_length)
    f = pfigs.rotary_frequency_figure(b, view)
    assert len(f.data) == 2 and all(d.showlegend for d in f.data) and f.layout.yaxis.type == "log"
    assert sorted(s.y0 for s in f.layout.shapes) == [8, 256]                  # the window and the context
    assert sorted(a.y for a in f.layout.annotations) == [math.log10(8), math.log10(256)]   # log axis: exponents
    assert "10,000" in f.data[0].name and "1,000,000" in f.data[1].name
    c = pfigs.distance_curve_figure(pos.distance_curves(b, gemma_trace.n_tokens), view)
    assert len(c.data) == 4 and c.layout.xaxis.type == "log" and [d.showlegend for d in c.data] == [False, True] * 2
    text = pwords.bases_text(b, view)
    assert "10,000" in text and "1,000,000" in text and "{" not in text
    assert "{" not in pwords.curves_text(pos.distance_curves(b, gemma_trace.n_tokens), view)


# ---------------------------------------------------------------- the model card and the MLP


def test_model_card_shows_norms_window_mlp_scale_and_kv_heads(tiny_gemma3, tiny_llama, tiny_gpt2):
    g = model_card(tiny_gemma3)
    assert (g.mlp_kind, g.norm_kind, g.norms_per_block, g.qk_norm) == ("GeGLU", "RMSNorm", 4, True)
    assert g.window == 8 and g.local_layers == (0, 1) and g.rotary_bases == (10_000.0, 1_000_000.0)
    assert g.embed_scale == pytest.approx(8.0) and g.n_kv_heads == 1          # √64
    l = model_card(tiny_llama)
    assert (l.mlp_kind, l.norm_kind, l.norms_per_block, l.window, l.embed_scale) == ("SwiGLU", "RMSNorm", 2, None, None)
    p = model_card(tiny_gpt2)
    assert (p.mlp_kind, p.norm_kind, p.rotary_bases) == ("GELU", "LayerNorm", ())


@pytest.mark.parametrize("lang", LANGS)
def test_card_words(tiny_gemma3, tiny_llama, tiny_gpt2, lang):
    view = View.of("overview", lang)
    values = dict(owords.card_values(model_card(tiny_gemma3), view))
    t = view.t
    assert values[t["card_mlp_kind"]] == "GeGLU" and values[t["card_norms"]] == "4 + q/k"
    assert values[t["card_embed_scale"]] == "× √64" and values[t["card_window"].format(local=2, n=3)] == "8"
    assert all(len(v) <= 8 for v in values.values())                         # a metric shows ~8 characters
    notes = owords.design_notes(model_card(tiny_gemma3), view)
    assert t["design_kv_one"].format(heads=4) in notes and t["design_qk_norm"] in notes
    assert "10,000" in notes and "1,000,000" in notes and "8.0" in notes      # both bases, the scale's value
    assert notes.count("\n- ") == 5                                            # norms, window, bases, MLP, scale, KV
    for model in (tiny_llama, tiny_gpt2):
        card = model_card(model)
        assert dict(owords.card_values(card, view))[t["card_window_none"]] == t["window_none"]
        assert "{" not in owords.design_notes(card, view)


def test_journey_says_scale_and_window(gemma_trace, tiny_gemma3, tiny_llama):
    view = View.of("overview")
    boxes = dict(zip(ofigs.STAGES, ofigs.journey_boxes(journey(tiny_gemma3, gemma_trace), view)))
    assert "√64" in boxes["vectors"][2] and "8.0" in boxes["vectors"][3]
    assert view.t["stage_blocks_hover_window"].format(local=2, window=8) in boxes["blocks"][3]
    plain = dict(zip(ofigs.STAGES, ofigs.journey_boxes(journey(tiny_llama, explainer.trace(tiny_llama, "a b")), view)))
    assert plain["vectors"][2] == view.t["stage_vectors_detail"] and "window" not in plain["blocks"][3]


def test_mlp_design_names_the_activation(tiny_gemma3, tiny_llama, tiny_qwen3, tiny_gpt2):
    assert mlp_design(tiny_gemma3).kind == "GeGLU" and mlp_design(tiny_gemma3).post_norm
    assert [mlp_design(m).kind for m in (tiny_llama, tiny_qwen3, tiny_gpt2)] == ["SwiGLU", "SwiGLU", "GELU"]
    assert not any(mlp_design(m).post_norm for m in (tiny_llama, tiny_qwen3, tiny_gpt2))
    for lang in LANGS:
        t = View.of("mlp", lang).t
        assert "GeGLU" in t["geglu"] and "SwiGLU" in t["swiglu"] and "GELU" in t["gelu"]


def test_journey_text_is_cut_by_display_width():
    """A Chinese character is twice as wide as a Latin one: the Text box holds 16 columns."""
    assert ofigs._short("The capital of France is Paris.") == "The capital of …"
    assert ofigs._short("法国的首都是巴黎。德国的首都是") == "法国的首都是巴…"
    assert ofigs._short("法国 is 巴黎") == "法国 is 巴黎"
