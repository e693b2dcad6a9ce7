"""Every page that reads the prompt: an empty one gets a friendly message, no chart, and is kept."""
import pytest

from explainer.registry import slugs
from tests.app.conftest import open_page

PAGES = [slug for slug in slugs() if slug != "learning"]    # every page but Learning (it trains its own model)


@pytest.mark.parametrize("page", PAGES)
def test_empty_prompt_is_friendly(page):
    at = open_page(page, prompt="   ", off="0.1" if page == "why" else "")
    assert not at.exception
    assert any("empty" in i.value for i in at.info)
    assert not at.get("plotly_chart")
    assert at.sidebar.text_area[0].value == "   "      # what the user typed is kept
