"""After a dropped connection, rebuild the view on the server from the URL at once.

When the network drops and returns, Streamlit's page reconnects by itself. If the server kept
the session (a short drop), nothing is lost. If it did not (the server restarted, or the drop
outlasted ``server.disconnectedSessionTTL``), the browser still shows the old page but the new
session on the server knows nothing until the next click. So a small watcher (installed by
:mod:`explainer.ui.stage.browser`) follows the app's connection state and, when the connection
comes back after having been lost, asks for one rerun. In a new session that run reads the
whole view from the URL (:func:`explainer.ui.frame.state.load_query_params`; the URL is kept complete
by :func:`explainer.ui.stage.talk.complete_url`); in a kept session it just redraws the same view.
"""
from __future__ import annotations

TRIGGER = "resync"

# A JavaScript function body; ``rerun()`` asks Streamlit for one rerun. Installed once per tab.
SCRIPT = """
function installResync(rerun) {
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
          if (document.querySelector('[data-test-script-state="running"]')) return;
          window.__llmExplainerResyncs = (window.__llmExplainerResyncs || 0) + 1;
          rerun();
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
}
"""
