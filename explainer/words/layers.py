"""The Layers page's words: what to notice about this prompt's residual stream and logit lens."""
from __future__ import annotations

from explainer.analysis.residual import AnswerGrowth, ResidualNorms
from explainer.numbers import human
from explainer.tokens import for_markdown
from explainer.view import View


def notice(growth: AnswerGrowth, norms: ResidualNorms, view: View) -> str:
    """Markdown: at which layer the final answer becomes the lens's top guess, and whether the first
    token's vector stands out. Reads notice ({growth}, {sink}), growth_zero / growth_first / growth_last
    ({position}, {token}, {answer}, {layer}, {n}, {rank}), sink_yes / sink_no ({sink_norm}, {median_norm})."""
    t = view.t
    facts = dict(position=growth.position, token=for_markdown(growth.token), answer=for_markdown(growth.answer),
                 layer=growth.first_layer, n=growth.n_layers, rank=growth.rank_before_last + 1)
    kind = "growth_zero" if growth.first_layer == 0 else "growth_last" if growth.first_layer == growth.n_layers \
        else "growth_first"
    sink = t["sink_yes" if norms.first_token_stands_out() else "sink_no"].format(
        sink_norm=human(norms.largest[2]), median_norm=human(norms.typical))
    return t["notice"].format(growth=t[kind].format(**facts), sink=sink)
