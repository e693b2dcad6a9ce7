"""The sidebar's longest-text control follows the model's whole context, and a text too long for the
memory budget is refused in the page's language with the number of tokens that would fit."""
from explainer.text import texts
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
from tests.app.conftest import ZH_PROMPT, open_page


def _lengths(at) -> list[int]:
    return [int(o) for o in at.select_slider(key=widget_key("max_tokens")).options]


def test_the_longest_text_offered_is_the_models_context():
    assert _lengths(open_page("tokens", model="random-gpt2"))[-1] == 1024
    assert _lengths(open_page("tokens"))[-1] == 8192                          # SmolLM2
    gemma = open_page("tokens", model="gemma-3-270m", lang="zh", max_tokens=32768)
    assert not gemma.exception and _lengths(gemma)[-2:] == [16384, 32768]
    assert stored(gemma.session_state, "max_tokens") == 32768
    smol = open_page("tokens", max_tokens=32768)                             # more than SmolLM2 reads
    assert stored(smol.session_state, "max_tokens") == 8192 and not smol.exception


def test_a_refusal_says_in_chinese_how_many_tokens_fit(monkeypatch):
    monkeypatch.setenv("LLM_EXPLAINER_MEMORY_GB", "0.05")
    at = open_page("tokens", model="gemma-3-270m", lang="zh", prompt=ZH_PROMPT * 600, max_tokens=32768)
    assert not at.exception and not at.get("plotly_chart")
    warning = " ".join(w.value for w in at.warning)
    words = texts("common", "zh")
    assert words["too_large"].split("{")[0] in warning and "最多能读" in warning and "词元" in warning
