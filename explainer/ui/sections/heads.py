"""The Attention page's layer × head maps, computed behind the page (a background job).

The statistics need every layer's queries and keys: a fraction of a second on a short text,
about 25 s at 8,192 tokens on two cores. So the page draws everything else at once and the maps
fill in (:mod:`explainer.ui.frame.background`). Past 4,096 tokens the job first publishes an estimate
from an even sample of 1,024 exact rows (an eighth of the time), drawn flagged, then the exact
maps; after that they are remembered for every session (``explainer.analysis.attention``).
"""
from __future__ import annotations

import weakref

import streamlit as st

from explainer.analysis import attention as att
from explainer.figures import attention as figs
from explainer.jobs import JobContext
from explainer.trace import Trace
from explainer.ui.frame.background import behind
from explainer.ui.frame.widgets import figure
from explainer.view import View


def head_stats_section(trace: Trace, view: View, layer: int, head: int) -> att.HeadStats | None:
    """Draw the maps with (layer, head) marked; returns the exact statistics once they are ready."""
    t = view.t
    if att.head_stats_ready(trace):
        stats = att.cached_head_stats(trace)
    else:
        label = t["stats_spinner_exact" if att.estimate_first(trace) else "stats_spinner"]
        status = behind("attention.head_stats", ("head_stats", weakref.ref(trace)), _statistics(trace), label,
                        view.common)
        if status.state == "failed":
            st.warning(view.common["jobs_failed"].format(error=status.error))
        if status.partial is not None:
            estimate = status.partial
            figure(figs.head_stats_figure(estimate, view, (layer, head)), "attention_head_stats")
            st.caption(t["stats_sampled"].format(rows=estimate.rows_read, n=estimate.n_rows))
        if status.result is None:
            return None
        stats = status.result
    figure(figs.head_stats_figure(stats, view, (layer, head)), "attention_head_stats", stats)
    return stats


def _statistics(trace: Trace):
    """The job: on a long text the estimate first (published), then the exact statistics."""
    def compute(progress: JobContext) -> att.HeadStats:
        if att.estimate_first(trace):
            progress.publish(att.cached_head_stats(trace, lambda f, m: progress(f / 8, m), sample=True))
            return att.cached_head_stats(trace, lambda f, m: progress(1 / 8 + 7 * f / 8, m))
        return att.cached_head_stats(trace, progress)
    return compute
