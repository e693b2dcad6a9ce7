"""A text too long for the memory budget is refused on the page, and the app keeps serving."""
from explainer.text import texts
from tests.app.conftest import open_page

LONG = "The residual stream carries what every layer wrote. " * 900        # ≈ 9,000 tokens


def test_a_too_large_request_is_refused_and_others_are_served(monkeypatch):
    monkeypatch.setenv("LLM_EXPLAINER_MEMORY_GB", "0.05")                   # 50 MB for one request
    at = open_page("tokens", prompt=LONG, max_tokens=8192)
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert texts("common", "en")["too_large"].split("{")[0] in warning and "more than the 51.2 MB" in warning
    assert not at.get("plotly_chart")                                       # nothing half-drawn
    other = open_page("tokens")                                             # another session, a short text
    assert not other.exception and other.get("plotly_chart")
