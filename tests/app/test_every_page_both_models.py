"""Every page with both embedded models, in both languages, on the default and the Chinese prompt.

One AppTest session per (model, language, prompt) walks the pages in the app's order (as a user
clicking through the menu would), so the model loads once per model and each prompt is traced once
for the whole suite (the shared trace cache). On each page: no exception, the title in the chosen
language, and what a user should see there: on Attention with Gemma the local / global layers, on
Position both rotary bases, on MLP the activation's name, on Next token with Gemma and the Chinese
prompt 柏, on Tokens with Gemma the Chinese words as whole chips, on Why this answer? the sentence
naming what pushed the answer and every character of the text scored, on Where is it decided? the
language's first ready pair with its four maps and the sentence on the residual stream.
"""
from __future__ import annotations

import re
from typing import Callable

import pytest
from streamlit.testing.v1 import AppTest

from explainer import registry
from explainer.text import texts
from explainer.ui.tools.apptest import open_page, settle_jobs
from tests.app.conftest import ZH_PROMPT

SMOLLM2, GEMMA = "smollm2-135m", "gemma-3-270m"
PROMPTS = {"default": None, "chinese": ZH_PROMPT}


def _chinese(lang: str, prompt: str) -> bool:
    """Whether the page reads the Chinese sentence (the default prompt follows the language)."""
    return prompt == "chinese" or lang == "zh"


def _pages() -> tuple[str, ...]:
    """Every page's slug, in the app's order (the page registry)."""
    return registry.slugs()


def _text(at: AppTest) -> str:
    """Everything written on the page: Markdown, captions, alerts, metrics, HTML, buttons."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [f"{m.label} {m.value}" for m in at.metric] + [h.proto.body for h in at.get("html")]
    parts += [w.value for w in at.warning] + [b.label for b in at.button]
    return "\n".join(parts)


def _charts(at: AppTest) -> list[dict]:
    import json
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _check_overview(at, model, lang, prompt):
    t = texts("overview", lang)
    metrics = {m.label: m.value for m in at.metric}
    if model == GEMMA:
        assert metrics[t["card_mlp_kind"]] == "GeGLU" and metrics[t["card_heads"]] == "4 / 1"
        assert metrics[t["card_window"].format(local=15, n=18)] == "512"
        assert metrics[t["card_embed_scale"]] == "× √640" and metrics[t["card_norms"]] == "4 + q/k"
        assert "25.3" in _text(at) and "1,000,000" in _text(at)        # the design notes say the rest
        assert "Gemma Terms of Use" in _text(at)                       # its licence is named on the card
    else:
        assert metrics[t["card_mlp_kind"]] == "SwiGLU" and metrics[t["card_heads"]] == "9 / 3"
        assert metrics[t["card_window_none"]] == t["window_none"] and metrics[t["card_norms"]] == "2"


def _check_tokens(at, model, lang, prompt):
    chips = "".join(h.proto.body for h in at.get("html"))
    if model == GEMMA and _chinese(lang, prompt):
        for word in ("法国", "巴黎", "德国"):
            assert f">{word}<sub>" in chips, f"{word} is not one whole chip"
    if _chinese(lang, prompt):
        assert all(ch in chips for ch in "法国的首都是巴黎")          # every character is visible


def _check_position(at, model, lang, prompt):
    shown = _text(at)
    freq = next(c for c in _charts(at) if len(c["data"]) and "customdata" in c["data"][0])
    if model == GEMMA:
        assert "10,000" in shown and "1,000,000" in shown
        assert len(freq["data"]) == 2                                  # a line per rotary base
    else:
        assert "100,000" in shown and len(freq["data"]) == 1


def _check_attention(at, model, lang, prompt):
    t, shown = texts("attention", lang), _text(at)
    check = next(c.value for c in at.caption if "e-" in c.value)
    assert float(re.search(r"(\d\.\d+e-\d+)", check).group(1)) < 1e-5  # the q·k steps match the model
    local = t["layer_local"].split("{layer}")[0]
    if model == GEMMA:
        assert local in shown and t["strip_legend_global"] in shown    # the layer strip and the layer's kind
        assert "query_pre_attn_scalar" in shown and t["kv_note_single"].format(heads=4) in shown
        assert t["norm_note"].strip() in shown
    else:
        assert local not in shown and t["strip_legend_global"] not in shown
        assert "query_pre_attn_scalar" not in shown


def _check_mlp(at, model, lang, prompt):
    info = "\n".join(i.value for i in at.info)
    assert ("GeGLU" if model == GEMMA else "SwiGLU") in info
    assert (texts("mlp", lang)["post_norm"].strip() in info) == (model == GEMMA)


def _check_next_token(at, model, lang, prompt):
    top = at.metric[0].value
    if _chinese(lang, prompt) and model == GEMMA:
        assert top == "柏"
    elif not _chinese(lang, prompt):
        assert "Berlin" in top


def _check_why(at, model, lang, prompt):
    t = texts("why", lang)
    assert len(_charts(at)) == 3                                       # heads, MLP layers, the words
    sentence = at.info[0].value
    assert t["sentence_heads"].split("{")[0] in sentence or t["sentence_no_head"].split("{")[0] in sentence
    chips = "".join(h.proto.body for h in at.get("html"))
    if _chinese(lang, prompt):
        assert all(ch in chips for ch in "法国的首都是巴黎")          # every character of the text is scored
    if _chinese(lang, prompt) and model == GEMMA:
        assert at.metric[0].value == "柏"


def _check_patching(at, model, lang, prompt):
    t = texts("patching", lang)
    assert len(_charts(at)) == 5                                       # four maps and the cell run again
    assert at.metric[0].value == ("Anna" if lang == "zh" else "␣Berlin")   # the language's first ready pair
    assert at.info[0].value.startswith(t["sentence_carried"].split("{")[0])


CHECKS: dict[str, Callable] = {"overview": _check_overview, "tokens": _check_tokens, "position": _check_position,
                               "attention": _check_attention, "mlp": _check_mlp, "next_token": _check_next_token,
                               "why": _check_why, "patching": _check_patching}


@pytest.mark.parametrize("prompt", list(PROMPTS))
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("model", [SMOLLM2, GEMMA])
def test_every_page(model, lang, prompt):
    query = {"model": model, "lang": lang} | ({"prompt": PROMPTS[prompt]} if PROMPTS[prompt] else {})
    at = open_page("overview", query=query)
    problems = []
    for slug in _pages():
        if slug != "overview":
            settle_jobs(at.switch_page(registry.page(slug).file).run())     # parts computed behind the page
        try:
            assert not at.exception, at.exception[0].message
            title = at.title[0].value
            assert bool(re.search(r"[\u4e00-\u9fff]", title)) == (lang == "zh"), f"title {title!r}"
            if slug in CHECKS:
                CHECKS[slug](at, model, lang, prompt)
        except AssertionError as err:
            problems.append(f"{slug}: {err}")
    assert not problems, "\n".join(problems)
