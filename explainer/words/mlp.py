"""The MLP page's words: what kind of MLP this model has."""
from __future__ import annotations

from explainer.analysis.mlp import MlpDesign
from explainer.view import View


def design(d: MlpDesign, view: View) -> str:
    """Markdown: the MLP's kind and widths, and Gemma's post-norm. Reads gelu / swiglu / geglu
    ({d_model}, {d_mlp}) and post_norm."""
    t = view.t
    return t[d.kind.lower()].format(d_model=d.d_model, d_mlp=d.d_mlp) + (t["post_norm"] if d.post_norm else "")
