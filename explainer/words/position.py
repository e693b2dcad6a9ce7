"""The Position page's sentences: the rotary bases and what the distance curves show."""
from __future__ import annotations

from explainer.analysis.position import DistanceCurves, RotaryBases
from explainer.analysis.windows import LayerWindows
from explainer.view import View


def bases_text(b: RotaryBases, view: View) -> str:
    """Markdown before the frequency chart: the pairs and the base (or, with several bases, which
    layers use which and why the global layers' base is larger).

    Reads rotate_intro ({hd}, {pairs}, {theta}); with several bases rotate_bases ({hd}, {pairs},
    {theta_local}, {theta_global}, {window}, {slow_local}, {slow_global}) and why_bases ({window},
    {context}, {pairs}, {few}, {many}, {theta_local}, {theta_global}).
    """
    first, t = b.bases[0], view.t
    if len(b.bases) == 1:
        return t["rotate_intro"].format(hd=first.head_dim, pairs=len(first.inv_freq), theta=first.theta)
    last = b.bases[-1]
    window = max((w for w in b.windows if w), default=b.context)
    values = dict(hd=first.head_dim, pairs=len(first.inv_freq), theta_local=f"{first.theta:,.0f}",
                  theta_global=f"{last.theta:,.0f}", window=f"{window:,}", context=f"{b.context:,}",
                  slow_local=f"{first.wavelength.max():,.0f}", slow_global=f"{last.wavelength.max():,.0f}",
                  few=b.slow_pairs(0, b.context), many=b.slow_pairs(len(b.bases) - 1, b.context))
    return t["rotate_bases"].format(**values) + "\n\n" + t["why_bases"].format(**values)


def curves_text(c: DistanceCurves, view: View, far: int = 4096) -> str:
    """Markdown before the distance curves. Reads curve_intro; with several bases also curve_bases
    ({far}, {local}, {global_}, {theta_local}, {theta_global}) and sentence_sep."""
    t = view.t
    if len(c.curves) == 1:
        return t["curve_intro"]
    return t["curve_intro"] + t["sentence_sep"] + t["curve_bases"].format(
        far=f"{far:,}", local=f"{c.curves[0].average_at(far):.2f}", global_=f"{c.curves[-1].average_at(far):.2f}",
        theta_local=f"{c.thetas[0]:,.0f}", theta_global=f"{c.thetas[-1]:,.0f}")


def real_caption(lw: LayerWindows, layer: int, view: View) -> str:
    """The caption under the real scores of ``layer`` (the page's) when the model has several bases: its
    kind and base. Reads real_local / real_global ({layer}, {theta}, {window})."""
    return view.t["real_local" if lw.is_local(layer) else "real_global"].format(
        layer=layer, theta=f"{lw.thetas[layer]:,.0f}", window=lw.windows[layer])
