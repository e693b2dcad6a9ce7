"""The Overview's words: the model card's values and the notes on how its blocks are built."""
from __future__ import annotations

from explainer.analysis.overview import ModelCard
from explainer.numbers import human
from explainer.view import View


def card_values(card: ModelCard, view: View) -> list[tuple[str, str]]:
    """(label, value) of every fact on the model card, in the page's words; values stay short (a metric
    shows about eight characters on a 1280-pixel screen), the design notes say the rest.

    Reads card_params, card_layers, card_heads, card_heads_value ({heads}, {kv}), card_d_model, card_d_mlp,
    card_vocab, card_context, card_position, position_rotary, position_learned, card_mlp_kind, card_norms,
    norms_value ({n}), norms_value_qk ({n}), card_window ({local}, {n}), card_window_none, window_none,
    card_embed_scale, embed_scale_value ({d}), embed_scale_none.
    """
    t = view.t
    norms = t["norms_value_qk" if card.qk_norm else "norms_value"].format(n=card.norms_per_block)
    window_label = (t["card_window"].format(local=len(card.local_layers), n=card.n_layers) if card.window
                    else t["card_window_none"])
    scale = t["embed_scale_value"].format(d=card.d_model) if card.embed_scale else t["embed_scale_none"]
    return [(t["card_params"], human(card.parameters.total)), (t["card_layers"], str(card.n_layers)),
            (t["card_heads"], t["card_heads_value"].format(heads=card.n_heads, kv=card.n_kv_heads)),
            (t["card_d_model"], str(card.d_model)), (t["card_d_mlp"], f"{card.d_mlp:,}"),
            (t["card_vocab"], f"{card.vocab_size:,}"), (t["card_context"], f"{card.context_length:,}"),
            (t["card_position"], t["position_rotary" if card.rotary else "position_learned"]),
            (t["card_mlp_kind"], card.mlp_kind), (t["card_norms"], norms),
            (window_label, str(card.window) if card.window else t["window_none"]), (t["card_embed_scale"], scale)]


def design_notes(card: ModelCard, view: View) -> str:
    """Markdown bullets on how this model's blocks are built: norms, window, MLP, embedding scale,
    key/value heads. Reads design_norms_<n> ({kind}) for n in 2 and 4, design_qk_norm, design_window
    ({local}, {n}, {window}, {globals}), design_bases ({local}, {global_}), design_mlp_<kind>, design_scale ({d}, {scale}), design_kv_one
    ({heads}), design_kv_grouped ({heads}, {kv}, {group}), list_sep, sentence_sep."""
    t = view.t
    notes = [t[f"design_norms_{card.norms_per_block}"].format(kind=card.norm_kind)
             + (t["sentence_sep"] + t["design_qk_norm"] if card.qk_norm else "")]
    if card.window:
        globals_ = [l for l, w in enumerate(card.windows) if w is None]
        notes.append(t["design_window"].format(local=len(card.local_layers), n=card.n_layers, window=card.window,
                                               globals=t["list_sep"].join(map(str, globals_))))
    if len(card.rotary_bases) > 1:
        notes.append(t["design_bases"].format(local=f"{card.rotary_bases[0]:,.0f}",
                                              global_=f"{card.rotary_bases[-1]:,.0f}"))
    notes.append(t[f"design_mlp_{card.mlp_kind.lower()}"])
    if card.embed_scale:
        notes.append(t["design_scale"].format(d=card.d_model, scale=f"{card.embed_scale:.1f}"))
    if card.n_kv_heads == 1 and card.n_heads > 1:
        notes.append(t["design_kv_one"].format(heads=card.n_heads))
    elif card.n_kv_heads < card.n_heads:
        notes.append(t["design_kv_grouped"].format(heads=card.n_heads, kv=card.n_kv_heads,
                                                   group=card.n_heads // card.n_kv_heads))
    return "\n".join("- " + note for note in notes)
