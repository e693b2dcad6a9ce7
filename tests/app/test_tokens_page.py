import pytest

from tests.app.conftest import PROMPTS, open_page


@pytest.mark.parametrize("which", ["default", "chinese"])
def test_tokens_page_renders(which):
    values = {} if PROMPTS[which] is None else {"prompt": PROMPTS[which]}
    at = open_page("tokens", **values)
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 1
    assert at.metric[0].value.isdigit() and int(at.metric[0].value) > 0
def test_tokens_page_in_chinese():
    at = open_page("tokens", lang="zh")
    assert at.title[0].value.startswith("词元")


def test_html_in_prompt_is_shown_as_text():
    at = open_page("tokens", prompt="<b>bold</b><script>alert(1)</script>")
    assert not at.exception
    chips = [h.proto.body for h in at.get("html")]
    joined = "".join(chips)
    assert "<script" not in joined and "<b>" not in joined
    assert "&lt;" in joined and "script" in joined          # escaped, yet shown
