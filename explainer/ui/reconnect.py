"""After a dropped connection, rebuild the view on the server from the URL at once.

When the network drops and returns, Streamlit's page reconnects by itself. If the server kept
the session (a short drop), nothing is lost. If it did not (the server restarted, or the drop
outlasted ``server.disconnectedSessionTTL``), the browser still shows the old page but the new
session on the server knows nothing until the next click. So a small script (no CDN, no
iframe) watches the app's connection state and, when it comes back after having been lost,
clicks a hidden button: one rerun, which in a new session reads the whole view from the URL
(:func:`explainer.ui.state.load_query_params`; the URL is kept complete by
:func:`explainer.ui.stage.complete_url`). In a kept session the rerun just redraws the same view.
The script installs itself once per browser tab.
"""
from __future__ import annotations

import streamlit as st

BUTTON_KEY = "stage_resync"

_SCRIPT = """
<script>
(() => {
  if (window.__llmExplainerResync) return;
  window.__llmExplainerResync = true;
  let lost = false, seen = false;
  const check = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.getAttribute('data-test-connection-state');
    if (!state) return;
    if (state === 'CONNECTED') {
      if (seen && lost) {
        lost = false;
        setTimeout(() => {
          const button = document.querySelector('.st-key-%s button');
          const running = document.querySelector('[data-test-script-state="running"]');
          if (button && !running) {
            window.__llmExplainerResyncs = (window.__llmExplainerResyncs || 0) + 1;
            button.click();
          }
        }, 300);
      }
      seen = true;
    } else if (seen) {
      lost = true;
    }
  };
  new MutationObserver(check).observe(document.documentElement,
    {subtree: true, attributes: true, attributeFilter: ['data-test-connection-state']});
  check();
})();
</script>
""" % BUTTON_KEY


def watch(label: str) -> None:
    """Draw the hidden button and the script that presses it after a reconnection (inside a hidden container)."""
    st.button(label, key=BUTTON_KEY)
    st.html(_SCRIPT, unsafe_allow_javascript=True)
