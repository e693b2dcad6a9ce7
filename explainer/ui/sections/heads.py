"""The Attention page's layer × head maps: exact, and on a long text an estimate shown first.

Past 4,096 tokens the exact statistics (every query row) take a while (about 25 s at 8,192 tokens
on two cores). The estimate from an even sample of 1,024 exact rows takes an eighth of that, so it
is drawn first, flagged, and replaced by the exact maps as soon as they are computed; after that
the exact ones are remembered for every session (``explainer.analysis.attention``).
"""
from __future__ import annotations

import streamlit as st

from explainer.analysis import attention as att
from explainer.figures import attention as figs
from explainer.trace import Trace
from explainer.ui.frame.widgets import figure, long_task
from explainer.view import View


def head_stats_section(trace: Trace, view: View, layer: int, head: int) -> att.HeadStats:
    """Draw the maps with (layer, head) marked; returns the exact statistics."""
    t = view.t
    slot, label = st.empty(), t["stats_spinner"]
    if att.estimate_first(trace):
        label = t["stats_spinner_exact"]
        estimate = long_task(t["stats_spinner"], trace.n_tokens, lambda p: att.cached_head_stats(trace, p, sample=True))
        with slot.container():
            figure(figs.head_stats_figure(estimate, view, (layer, head)), "attention_head_stats_estimate")
            st.caption(t["stats_sampled"].format(rows=estimate.rows_read, n=estimate.n_rows))
    stats = long_task(label, trace.n_tokens, lambda p: att.cached_head_stats(trace, p))
    slot.empty()
    figure(figs.head_stats_figure(stats, view, (layer, head)), "attention_head_stats", stats)
    return stats
