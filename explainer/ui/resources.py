"""Process-wide caches shared by every session: models, traces, and the page context.

One model per (name, device) and one trace per (model, prompt, max_tokens) for the whole
server, so thirty students on the same prompt cost one forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import streamlit as st

import explainer
from explainer.cache import ByteLRU
from explainer.models import DEFAULT_NAME, LoadedModel, ModelLoadError, default_model_dir, default_model_ready
from explainer.text import texts
from explainer.trace import Trace
from explainer.ui import state, tour
from explainer.ui.sidebar import sidebar
from explainer.ui.stage import on_stage
from explainer.ui.style import inject_style
from explainer.ui.widgets import _current

TRACE_CACHE_BYTES = 3 * 2**30


@st.cache_resource(show_spinner=False, max_entries=4)
def _model(name: str, device: str) -> LoadedModel:
    return explainer.load_model(name or None, device=device)


@st.cache_resource(show_spinner=False)
def _trace_cache() -> ByteLRU[Trace]:
    return ByteLRU(TRACE_CACHE_BYTES, size_of=Trace.nbytes)


def get_model(name: str, device: str, common: Mapping[str, str]) -> LoadedModel:
    """The shared model, converting the embedded default first (with a progress bar) if needed."""
    if not name or name in (DEFAULT_NAME, "default", explainer.RANDOM_GPT2):
        if not default_model_ready():
            bar = st.progress(0.0, text=common["converting"])
            default_model_dir(progress=lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), text=msg))
            bar.empty()
    with st.spinner(common["loading_model"]):
        return _model(name, device)


def get_trace(model: LoadedModel, text: str, max_tokens: int, ablate_heads: frozenset = frozenset(),
              ablate_mlps: frozenset = frozenset()) -> Trace:
    key = (model.name, str(model.device), text, max_tokens, ablate_heads, ablate_mlps)
    return _trace_cache().get_or_compute(
        key, lambda: explainer.trace(model, text, max_tokens, ablate_heads, ablate_mlps))


@dataclass(frozen=True)
class PageContext:
    """What every page starts from."""

    lang: str
    presenter: bool
    t: Mapping[str, str]          # this page's texts
    common: Mapping[str, str]     # shared labels and messages
    model: LoadedModel
    trace: Trace


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


def start_page(page: str) -> tuple[str, bool, Mapping[str, str], Mapping[str, str]]:
    """The shared frame every page draws first: URL state, sidebar, style, notices.

    Returns (lang, presenter, page texts, common texts).
    """
    _route_through_app()
    st.session_state["_page_now"] = page
    state.load_query_params()
    inject_style(bool(_current("presenter")))    # first, so presenter CSS (chrome hidden) arrives at once
    sidebar()
    lang, presenter = state.get("lang"), bool(state.get("presenter"))
    for name, value in state.bad_url_values():
        state.notice(texts("common", lang)["bad_url_value"].format(name=name, value=value))
    on_stage(lang, presenter)                     # presenter frame, share, tour keys, complete URL
    return lang, presenter, texts(page, lang), texts("common", lang)


def page_context(page: str) -> PageContext:
    """Frame, model and trace for ``page``; on any failure show a friendly message and stop."""
    lang, presenter, t, common = start_page(page)
    model = load_or_stop(common)
    prompt = state.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        st.title(t["title"])
        st.info(common["empty_prompt"])
        st.stop()
    try:
        with st.spinner(common["tracing"]):
            tr = get_trace(model, prompt, int(state.get("max_tokens")))
    except (ValueError, TypeError) as err:
        st.title(t["title"])
        st.warning(common["bad_prompt"].format(error=err))
        st.stop()
    if tr.truncated:
        st.info(common["truncated"].format(n=tr.n_tokens))
    st.sidebar.download_button(common["download_trace"], data=tr.to_bytes, file_name="trace.npz",
                               mime="application/octet-stream", key="download_trace", on_click="ignore",
                               help=common["download_trace_help"], width="stretch")
    tour.banner(page, model, tr, lang)
    return PageContext(lang, presenter, t, common, model, tr)


def load_or_stop(common: Mapping[str, str]) -> LoadedModel:
    name, device = state.get("model"), state.get("device")
    try:
        return get_model(name, device, common)
    except (ModelLoadError, TypeError, ValueError, OSError, RuntimeError) as err:
        st.error(common["model_error"].format(name=name or DEFAULT_NAME, error=err))
        st.stop()
