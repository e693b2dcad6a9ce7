"""AppTest helpers.

AppTest resets Streamlit's old-multipage-mode flag on every run (a ``pages/`` folder exists),
so after the first run it executes only the page script, not app.py. Our pages draw the shared
frame (sidebar) themselves, so this works; AppTest also does not follow ``st.switch_page``, so
a test follows it with ``at.switch_page(...)``. Preset values with ``open_page(..., name=value)``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
ZH_PROMPT = "法国的首都是巴黎。德国的首都是"
PROMPTS = {"default": None, "chinese": ZH_PROMPT, "empty": "   "}


def open_page(page: str, timeout: float = 120, query: dict | None = None, **values) -> AppTest:
    """Run the app, switch to ``pages/<page>.py`` with ``values`` preset in URL-backed state."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    for name, value in values.items():
        at.session_state["v_" + name] = value
        at.session_state["_push_" + name] = True      # a live widget shows it (as state.push does)
    at.switch_page(f"pages/{page}.py").run()
    return at


@pytest.fixture
def page_at():
    return open_page
