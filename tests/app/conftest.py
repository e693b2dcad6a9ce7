"""AppTest helpers: the harness lives in ``explainer.ui.tools.apptest`` (the benchmark uses it too).

Preset values with ``open_page(..., name=value)``; read them back with ``state.stored`` and find
a value's widget by ``state.widget_key(name)``.
"""
from __future__ import annotations

import pytest

from explainer.ui.tools.apptest import APP, open_page

__all__ = ["APP", "PROMPTS", "ZH_PROMPT", "open_page"]

ZH_PROMPT = "法国的首都是巴黎。德国的首都是"
PROMPTS = {"default": None, "chinese": ZH_PROMPT, "empty": "   "}


@pytest.fixture
def page_at():
    return open_page
