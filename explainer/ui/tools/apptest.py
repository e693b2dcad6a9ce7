"""The AppTest harness: open a page headless with values preset, find and move its widgets.

Used by the app tests and by the benchmark (§5, §8). AppTest resets Streamlit's
old-multipage-mode flag on every run (a ``pages/`` folder exists), so after the first run it
executes only the page script, not app.py; our pages draw the shared frame themselves, so
this works. AppTest does not follow ``st.switch_page``: a caller follows it with
``at.switch_page(...)``.
"""
from __future__ import annotations

import time
from typing import Any

from streamlit.testing.v1 import AppTest

from explainer import registry
from explainer.jobs import runner
from explainer.paths import REPO_ROOT
from explainer.ui.frame import background, state

APP = str(REPO_ROOT / "app.py")


def open_page(page: str, timeout: float = 120, query: dict | None = None, settle: bool = True,
              **values: Any) -> AppTest:
    """Run the app, then switch to ``pages/<page>.py`` with URL-backed ``values`` preset; with
    ``settle``, wait for the page's background parts and draw them (:func:`settle_jobs`)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    state.preset(at.session_state, **values)          # live widgets show them, as state.push does
    at.switch_page(registry.page(page).file).run()
    return settle_jobs(at, timeout) if settle else at


def pending_jobs(at: AppTest) -> dict[str, Any]:
    """The background parts the page in ``at`` still waits for, by slot."""
    return {slot: key for slot, key in background.waiting_for(at.session_state).items()
            if getattr(runner().poll(key), "pending", False)}


def settle_jobs(at: AppTest, timeout: float = 120) -> AppTest:
    """What a browser's progress lines do: wait while the page's background parts compute (still
    asking for them), then run the page again, until none is pending."""
    deadline = time.monotonic() + timeout
    owner = background.owner(at.session_state)
    while (waiting := pending_jobs(at)) and time.monotonic() < deadline:
        for key in waiting.values():
            runner().wait(key, max(0.0, deadline - time.monotonic()), owner)
        at.run()
    return at


def find_widget(at: AppTest, key: str) -> Any | None:
    """The widget with ``key``, whatever its kind (slider, select box, number input, radio…)."""
    for kind in ("slider", "select_slider", "selectbox", "number_input", "radio"):
        try:
            return getattr(at, kind)(key=key)
        except (KeyError, AttributeError, IndexError):
            continue
    return None


def set_other_value(widget: Any, k: int) -> None:
    """Give ``widget`` a value different from its current one (the k-th of a few)."""
    proto = widget.proto
    options = list(getattr(proto, "options", []) or [])
    kind = type(widget).__name__
    if options and kind in ("Selectbox", "Radio"):
        current = getattr(widget, "index", None)
        choices = [i for i in range(len(options)) if i != current]
        widget.select_index(choices[(k * 3) % len(choices)])
        return
    if kind == "SelectSlider":
        values = [v for v in options if v != widget.value]
        widget.set_value(values[(k * 3) % len(values)])
        return
    lo = getattr(proto, "min", None) if kind == "Slider" else getattr(proto, "min", 0)
    hi = getattr(proto, "max", None)
    step = getattr(proto, "step", 1) or 1
    current = widget.value
    frac = (0.7, 0.3, 0.9, 0.1)[k % 4]
    value = lo + round((hi - lo) * frac / step) * step
    if value == current:
        value = lo if current != lo else hi
    widget.set_value(type(current)(value) if isinstance(current, (int, float)) else value)


def chart_bytes(at: AppTest) -> tuple[int, int]:
    """(bytes of Plotly figure JSON, number of charts) on the page AppTest ``at`` shows."""
    charts = at.get("plotly_chart")
    return sum(len(el.proto.spec.encode("utf-8")) for el in charts), len(charts)
