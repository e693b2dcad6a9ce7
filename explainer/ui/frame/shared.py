"""Process-wide caches shared by every session: models and traces.

One model per (name, device) and one trace per (model, prompt, max_tokens, parts switched off)
for the whole server, so thirty students on the same prompt cost one forward pass.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import streamlit as st

import explainer
from explainer.cache import ByteLRU
from explainer.models import DEFAULT_NAME, EMBEDDED_NAMES, LoadedModel, embedded_dir, embedded_ready
from explainer.trace import Trace

TRACE_CACHE_BYTES = 3 * 2**30


@st.cache_resource(show_spinner=False, max_entries=4)
def _model(name: str, device: str) -> LoadedModel:
    return explainer.load_model(name or None, device=device)


@st.cache_resource(show_spinner=False)
def _trace_cache() -> ByteLRU[Trace]:
    return ByteLRU(TRACE_CACHE_BYTES, size_of=Trace.nbytes)


def get_model(name: str, device: str, common: Mapping[str, str]) -> LoadedModel:
    """The shared model, converting an embedded one first (with a progress bar) if needed."""
    embedded = DEFAULT_NAME if not name or name in ("default", explainer.RANDOM_GPT2) else name
    if embedded in EMBEDDED_NAMES and not embedded_ready(embedded):
        bar = st.progress(0.0, text=common["converting"])
        embedded_dir(embedded, progress=lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), text=msg))
        bar.empty()
    with st.spinner(common["loading_model"]):
        return _model(name, device)


class TraceKey(NamedTuple):
    """What identifies a trace in the shared cache."""

    model: str
    device: str
    text: str
    max_tokens: int
    ablate_heads: frozenset
    ablate_mlps: frozenset


LONG_TRACE = 1024               # from this many tokens a trace shows a progress bar instead of a spinner


def get_trace(model: LoadedModel, text: str, max_tokens: int, ablate_heads: frozenset = frozenset(),
              ablate_mlps: frozenset = frozenset(), progress_text: str | None = None) -> Trace:
    """The shared trace of ``text``; a long one that this session computes shows a progress bar."""
    key = TraceKey(model.name, str(model.device), text, max_tokens, ablate_heads, ablate_mlps)

    def compute() -> Trace:
        n = len(explainer.tokenize(model, text, max_tokens)[0]) if progress_text else 0
        if n < LONG_TRACE:
            return explainer.trace(model, text, max_tokens, ablate_heads, ablate_mlps)
        bar = st.progress(0.0, text=progress_text.format(n=f"{n:,}", layers=model.n_layers))
        try:
            return explainer.trace(model, text, max_tokens, ablate_heads, ablate_mlps,
                                   progress=lambda f, msg: bar.progress(min(max(f, 0.0), 1.0)))
        finally:
            bar.empty()
    return _trace_cache().get_or_compute(key, compute)


def traces_computed() -> int:
    """How many traces the shared cache has computed since the server started (forward passes)."""
    return _trace_cache().misses


def cached_traces() -> list[tuple[TraceKey, Trace]]:
    """The traces the shared cache holds now, oldest first."""
    return _trace_cache().items()
