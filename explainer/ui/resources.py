"""Process-wide caches shared by every session: models, traces, and the page context.

One model per (name, device) and one trace per (model, prompt, max_tokens) for the whole
server, so thirty students on the same prompt cost one forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple

import streamlit as st

import explainer
from explainer.cache import ByteLRU
from explainer.budget import TooLarge
from explainer.models import DEFAULT_NAME, EMBEDDED_NAMES, LoadedModel, ModelLoadError, embedded_dir, embedded_ready
from explainer.trace import Trace
from explainer.ui import state, tour
from explainer.ui.background import leave_other_pages
from explainer.ui.sidebar import sidebar
from explainer.ui.stage import on_stage
from explainer.ui.style import inject_style
from explainer.view import View

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
    return [(key, value) for key, (value, _) in list(_trace_cache()._items.items())]


@dataclass(frozen=True)
class PageContext:
    """What every page starts from."""

    view: View
    model: LoadedModel
    trace: Trace

    @property
    def t(self) -> Mapping[str, str]:
        return self.view.t

    @property
    def common(self) -> Mapping[str, str]:
        return self.view.common

    @property
    def lang(self) -> str:
        return self.view.lang

    @property
    def presenter(self) -> bool:
        return self.view.presenter


_rerouted = False


def _route_through_app() -> None:
    """Make sure app.py (and its st.navigation) runs, even when Streamlit started this page directly.

    While a folder named ``pages/`` exists, plain ``streamlit run app.py`` starts in Streamlit's
    old multipage mode, which runs a deep-linked page file without app.py. ``./run.sh`` avoids
    that (explainer.ui.serve); otherwise, the first time it happens in a process, switch the
    old mode off and rerun, so app.py's st.navigation routes to this same page (both modes name
    it by its url path). Once per process only: AppTest resets the mode on every run, and a
    rerun there would swallow a button click.
    """
    global _rerouted
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not _rerouted:
        _rerouted = True
        PagesManager.uses_pages_directory = False
        st.rerun()


def start_page(page: str) -> View:
    """The shared frame every page draws first: URL state, sidebar, style, notices; the page's View."""
    _route_through_app()
    state.set_page(page)
    leave_other_pages(page)                       # heavy parts of the page left are no longer awaited
    state.load_query_params()
    inject_style(bool(state.current("presenter")))   # first, so presenter CSS (chrome hidden) arrives at once
    sidebar()
    view = View.of(page, state.get("lang"), bool(state.get("presenter")), state.get("img"))
    state.set_view(view)
    for name, value in state.bad_url_values():
        state.notice(view.common["bad_url_value"].format(name=name, value=value))
    on_stage(view.lang, view.presenter)           # presenter frame, share, tour keys, complete URL
    return view


def page_context(page: str) -> PageContext:
    """Frame, model and trace for ``page``; on any failure show a friendly message and stop."""
    view = start_page(page)
    t, common = view.t, view.common
    model = load_or_stop(common)
    prompt = state.prompt()
    if not isinstance(prompt, str) or not prompt.strip():
        st.title(t["title"])
        st.info(common["empty_prompt"])
        st.stop()
    try:
        with st.spinner(common["tracing"]):
            tr = get_trace(model, prompt, int(state.get("max_tokens")), progress_text=common["tracing_long"])
    except TooLarge as err:
        st.title(t["title"])
        st.warning(common["too_large"].format(error=err))
        st.stop()
    except (ValueError, TypeError) as err:
        st.title(t["title"])
        st.warning(common["bad_prompt"].format(error=err))
        st.stop()
    if tr.truncated:
        st.info(common["truncated"].format(n=tr.n_tokens))
    st.sidebar.download_button(common["download_trace"], data=tr.to_bytes, file_name="trace.npz",
                               mime="application/octet-stream", key="download_trace", on_click="ignore",
                               help=common["download_trace_help"], width="stretch")
    tour.banner(page, model, tr, view.lang)
    return PageContext(view, model, tr)


_LOAD_ERRORS = (ModelLoadError, TypeError, ValueError, OSError, RuntimeError)


def load_or_stop(common: Mapping[str, str]) -> LoadedModel:
    """The model to read with; if the language's default cannot load (a broken package) and the
    user chose none, the English default reads instead, with a notice. A pick is never switched."""
    name, device = state.model_name(), state.get("device")
    try:
        return get_model(name, device, common)
    except _LOAD_ERRORS as err:
        if not state.get("model") and name != DEFAULT_NAME:
            try:
                model = get_model(DEFAULT_NAME, device, common)
            except _LOAD_ERRORS:
                pass
            else:
                st.warning(common["model_fallback"].format(name=name, error=err, other=DEFAULT_NAME))
                return model
        st.error(common["model_error"].format(name=name, error=err))
        st.stop()
