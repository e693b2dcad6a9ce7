"""The frame every page starts with: URL state, sidebar, style, stage, the model and the trace.

``start_page(slug)`` draws the shared frame and returns the page's View; ``page_context(slug)``
also loads the shared model and trace (:mod:`explainer.ui.frame.shared`), or shows a friendly
message and stops. A page file begins with one of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import streamlit as st

from explainer.budget import TooLarge
from explainer.models import DEFAULT_NAME, LoadedModel, ModelLoadError
from explainer.offer import ModelNotOffered
from explainer.serving import ServingError
from explainer.trace import Trace
from explainer.ui.frame import binding, run, serving, shared, state
from explainer.ui.frame.background import leave_other_pages
from explainer.ui.frame.sidebar import sidebar
from explainer.ui.frame.style import inject_style
from explainer.ui.stage import tour
from explainer.ui.stage.talk import on_stage
from explainer.view import View
from explainer.words import refusal


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
    that (explainer.ui.tools.serve); otherwise, the first time it happens in a process, switch the
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
    run.set_page(page)
    leave_other_pages(page)                       # heavy parts of the page left are no longer awaited
    state.load_query_params()
    inject_style(bool(binding.current("presenter")))   # first, so presenter CSS (chrome hidden) arrives at once
    sidebar()
    view = View.of(page, state.get("lang"), bool(state.get("presenter")), state.get("img"))
    run.set_view(view)
    serving.listen(view.common)                   # "busy — retrying in N s" when the cluster is full
    for name, value in state.bad_url_values():
        run.notice(view.common["bad_url_value"].format(name=name, value=value))
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
            tr = shared.get_trace(model, prompt, int(state.get("max_tokens")), progress_text=common["tracing_long"])
    except TooLarge as err:
        st.title(t["title"])
        st.warning(refusal.too_large(err, view))
        st.stop()
    except (ValueError, TypeError) as err:
        st.title(t["title"])
        st.warning(common["bad_prompt"].format(error=err))
        st.stop()
    except ServingError as err:
        st.title(t["title"])
        st.warning(common["cluster_failed"].format(error=err))
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
        return shared.get_model(name, device, common)
    except ModelNotOffered as err:                 # a link naming a model this server does not offer
        state.push("model", "")
        fallback = state.model_name()
        st.warning(serving.refused(err, common, fallback))
        return shared.get_model(fallback, device, common)
    except _LOAD_ERRORS as err:
        if serving.refused(err, common, "") is not None:
            st.error(serving.refused(err, common, ""))
            st.stop()
        if not state.get("model") and name != DEFAULT_NAME:
            try:
                model = shared.get_model(DEFAULT_NAME, device, common)
            except _LOAD_ERRORS:
                pass
            else:
                st.warning(common["model_fallback"].format(name=name, error=err, other=DEFAULT_NAME))
                return model
        st.error(common["model_error"].format(name=name, error=err))
        st.stop()
