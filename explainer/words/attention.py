"""The Attention page's sentences: the mask under the heatmap, the q·k steps, local and global layers."""
from __future__ import annotations

from explainer.analysis.attention import Pattern
from explainer.analysis.qk import QKSteps
from explainer.analysis.windows import LayerWindows
from explainer.view import View


def mask_note(p: Pattern, view: View) -> str:
    """The Markdown under the heatmap: the causal mask, and the window's cells when some are shown.
    Reads mask_note, mask_window_note ({window}), sentence_sep."""
    shown = p.outside is not None and bool(p.outside.any())
    return view.t["mask_note"] + (view.t["sentence_sep"] + view.t["mask_window_note"].format(window=p.reach)
                                  if shown else "")


def steps_text(s: QKSteps, view: View) -> str:
    """The Markdown before the q·k steps, saying what this model does: its scale (÷√head_dim, or
    Gemma's own), its window, q/k norms, and how heads share keys.

    Reads steps_intro ({scale_note}, {window_note}, {norm_note}, {kv_note}), scale_head_dim ({d}, {root}),
    scale_query_pre_attn_scalar ({square}, {root}, {d}), scale_model ({scale}, {d}), window_note ({window}),
    norm_note, kv_note ({head}, {kv}, {group}), kv_note_single ({heads}).
    """
    t = view.t
    values = dict(d=s.head_dim, root=f"{s.scale_square ** 0.5:g}", square=f"{s.scale_square:g}",
                  scale=f"{s.scale:.4f}", window=s.window, head=s.head, kv=s.kv_head,
                  group=t["list_sep"].join(map(str, s.sharing)), heads=len(s.sharing) + 1)
    if not s.sharing:
        kv = ""
    else:
        kv = t["kv_note_single" if s.kv_heads == 1 else "kv_note"].format(**values)
    return t["steps_intro"].format(
        scale_note=t[f"scale_{s.scaled_by}"].format(**values),
        window_note=t["window_note_steps"].format(**values) if s.window is not None else "",
        norm_note=t["norm_note"] if s.qk_norm else "", kv_note=kv)


def layer_note(lw: LayerWindows, view: View, layer: int = 0) -> str:
    """Markdown: is ``layer`` (the page's) local or global, and which layers are which.
    Reads layer_local / layer_global ({layer}, {window}, {before}, {n}, {local}, {globals}), list_sep."""
    t = view.t
    window = lw.windows[layer] or lw.window
    return t["layer_local" if lw.is_local(layer) else "layer_global"].format(
        layer=layer, window=window, before=window - 1, n=lw.n_layers, local=len(lw.local),
        globals=t["list_sep"].join(map(str, lw.global_layers)))


def mask_story(lw: LayerWindows, view: View) -> str:
    """Markdown under a layer's whole mask: why local and global layers, and what the window does to
    this prompt. Reads why_local ({window}, {globals_sentence}), globals_every ({period}), globals_some,
    short_text / long_text ({n}, {window}), sentence_sep (" " in English, nothing in Chinese)."""
    t, window = view.t, lw.window
    cut = any(lw.cuts(layer) for layer in lw.local)
    globals_sentence = t["globals_every"].format(period=lw.period) if lw.period else t["globals_some"]
    return t["why_local"].format(window=window, globals_sentence=globals_sentence) + t["sentence_sep"] + t[
        "long_text" if cut else "short_text"].format(n=lw.n_tokens, window=window)
