"""The app's few lines of browser code: the tour's keys and the reconnect watcher.

One tiny Streamlit component (``st.components.v2``: inline JavaScript served by this server,
no iframe, no CDN) mounted in a hidden corner of the sidebar on every page. Its script runs in
the app's own page, so it can listen to keys on the document and watch the connection. Each
piece installs itself once per browser tab; a mount after a page switch only hands the
watcher the current component's trigger (a trigger value starts one rerun, as a button does).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import streamlit as st

from explainer.ui.stage import keys, reconnect

NAME = "llm_explainer_stage"
KEY = "stage_browser"

_JS = keys.SCRIPT + reconnect.SCRIPT + """
export default function(component) {
  const stage = window.__llmExplainerStage = window.__llmExplainerStage || {};
  stage.trigger = component.setTriggerValue;       // the latest mount's: used after a reconnection
  installTourKeys();
  installResync(() => window.__llmExplainerStage.trigger('%s', Date.now()));
}
""" % reconnect.TRIGGER


@lru_cache(maxsize=1)
def _component() -> Any:
    return st.components.v2.component(NAME, js=_JS)


def mount() -> None:
    """Mount the component (call inside a hidden container); it draws nothing."""
    _component()(key=KEY, on_resync_change=_ignore)


def _ignore() -> None:
    """The rerun a trigger starts is all that is needed."""
