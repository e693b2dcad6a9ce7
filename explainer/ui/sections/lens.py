"""The Layers page's logit-lens grid, computed behind the page (a background job).

Each position costs a pass through the unembedding for every layer (Gemma 3: about 0.1–0.5 s per
position on two cores, its vocabulary has 262,144 tokens), so a grid of 16 positions is drawn when
ready, with a progress line, while the rest of the page is already there. Positions are
remembered on the trace, so a grid seen once comes back at once (``explainer.analysis.residual``).
"""
from __future__ import annotations

import weakref

import streamlit as st

from explainer.analysis.residual import LensReadout, cached_lens_readout, lens_ready
from explainer.figures.layers import lens_grid_figure
from explainer.jobs import JobContext
from explainer.models import LoadedModel
from explainer.trace import Trace
from explainer.ui.frame.background import behind
from explainer.ui.frame.widgets import figure
from explainer.view import View

CHUNK = 4               # positions read per step of the job (one progress report and cancellation point each)


def lens_grid(model: LoadedModel, trace: Trace, start: int, stop: int, view: View, position: int) -> None:
    """The grid over positions [start, stop), the chosen ``position`` marked: at once, or once computed."""
    if lens_ready(trace, start, stop):
        readout = cached_lens_readout(model, trace, start, stop)
    else:
        status = behind("layers.lens", ("lens", weakref.ref(trace), start, stop), _reading(model, trace, start, stop),
                        view.t["lens_spinner"], view.common)
        if status.state == "failed":
            st.warning(view.common["jobs_failed"].format(error=status.error))
        if status.result is None:
            return
        readout = status.result
    figure(lens_grid_figure(readout, view, position), "layers_lens", readout)


def _reading(model: LoadedModel, trace: Trace, start: int, stop: int):
    def compute(progress: JobContext) -> LensReadout:
        for a in range(start, stop, CHUNK):
            cached_lens_readout(model, trace, a, min(a + CHUNK, stop))
            progress((min(a + CHUNK, stop) - start) / (stop - start), f"{a}")
        return cached_lens_readout(model, trace, start, stop)
    return compute
