"""Keys for the guided tour: → / PageDown next, ← / PageUp back, Esc ends it.

Presentation clickers send PageDown / PageUp (some send the arrows). The listener sits on the
app's own document (installed by :mod:`explainer.ui.stage.browser`, no iframe, no CDN), so no click
into the page is needed first. A key does what the matching tour button does: it clicks it
(``.st-key-tour_next button`` …), so the tour's own Python code runs, exactly as with the mouse.
It stays out of the way:

- keys typed into a text box, a select box, a slider or any other control are left alone;
- with Ctrl, Alt, Meta or Shift, or while an IME composes, nothing happens;
- with a dialog open, Esc closes the dialog (Streamlit's own behaviour);
- a key held down (auto-repeat) or pressed while the app is still running a step is dropped,
  so a key can never queue a chain of reruns;
- where no tour button is on the page, the key keeps its normal meaning (scrolling).
"""
from __future__ import annotations

import json

# key → the tour buttons it presses, first one present wins (keys of the buttons in explainer.ui.stage.tour).
ACTIONS: dict[str, list[str]] = {
    "ArrowRight": ["tour_next", "tour_resume"],
    "PageDown": ["tour_next", "tour_resume"],
    "ArrowLeft": ["tour_back"],
    "PageUp": ["tour_back"],
    "Escape": ["tour_end", "tour_end_side"],
}

# A JavaScript function body; installs the listener once per browser tab.
SCRIPT = """
function installTourKeys() {
  if (window.__llmExplainerKeys) return;
  window.__llmExplainerKeys = true;
  const ACTIONS = %s;
  const CONTROLS = 'input, textarea, select, [contenteditable=""], [contenteditable="true"], [role="slider"],'
    + ' [role="combobox"], [role="listbox"], [role="textbox"], [role="spinbutton"], [role="radiogroup"],'
    + ' [role="tablist"], [role="menu"], [data-baseweb="select"], .js-plotly-plot';
  const inControl = (el) => !!(el && el.closest && el.closest(CONTROLS));
  const running = () => !!document.querySelector('[data-test-script-state="running"]');
  document.addEventListener('keydown', (e) => {
    const names = ACTIONS[e.key];
    if (!names || e.ctrlKey || e.altKey || e.metaKey || e.shiftKey || e.isComposing) return;
    if (inControl(e.target) || inControl(document.activeElement)) return;
    if (document.querySelector('[role="dialog"]')) return;
    for (const name of names) {
      const button = [...document.querySelectorAll('.st-key-' + name + ' button')]
        .find((b) => b.getBoundingClientRect().width > 0);   // skip hidden copies (tooltips)
      if (!button || button.disabled) continue;
      e.preventDefault();
      if (!e.repeat && !running()) {
        window.__llmExplainerKeyPresses = (window.__llmExplainerKeyPresses || 0) + 1;
        button.click();
      }
      return;
    }
  }, true);
}
""" % json.dumps(ACTIONS)
