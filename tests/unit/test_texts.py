"""Every text file, in both languages: the same keys, the same placeholders, and Markdown that renders.

The placeholders of a key must match exactly, format specs included (``{bits:.2f}`` in English and
``{bits}`` in Chinese would print differently). Each string is rendered by a CommonMark parser with
sample values in its placeholders; what a reader would see must hold no Markdown left unrendered
(``**`` that could not close, e.g. ``**温度（temperature）**让``: CommonMark does not close bold whose
closing ``**`` follows full-width punctuation and is followed by a letter).
"""
from __future__ import annotations

import html
import re
import string

import pytest
from markdown_it import MarkdownIt

from explainer.text import LANGUAGES, TEXT_DIR, pages_with_text, texts

PAGES = pages_with_text()
MARKDOWN = MarkdownIt("commonmark")
LEFTOVER = re.compile(r"\*\*|__|`|\[[^\]]*\]\([^)]*\)")       # bold, code or links that did not render


def _placeholders(text: str) -> set[tuple[str, str, str]]:
    """(name, format spec, conversion) of every ``{…}`` in ``text``; raises on unbalanced braces."""
    return {(name, spec or "", conv or "") for _, name, spec, conv in string.Formatter().parse(text)
            if name is not None}


WORDS = ("word", "巴黎。", "␣Berlin")    # a word, a Chinese token ending in full-width punctuation, a token


def _sample(spec: str, word: str) -> object:
    """A value that ``spec`` can format: a number for numeric specs, ``word`` otherwise."""
    if spec and spec[-1] in "dxXob" or spec == ",":
        return 1234
    if spec and spec[-1] in "eEfFgG%":
        return 0.5
    return word


def _filled(text: str, word: str = WORDS[0]) -> str:
    """``text`` with every placeholder replaced by a sample value, as the pages fill them."""
    out = []
    for literal, name, spec, conv in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            out.append(format(_sample(spec or "", word), spec or ""))
    return "".join(out)


def _seen(markdown: str) -> str:
    """What a reader sees of ``markdown``: its rendering without tags, code spans left out."""
    rendered = MARKDOWN.render(markdown)
    rendered = re.sub(r"<code>.*?</code>", " ", rendered, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", rendered))


def test_every_page_has_a_text_file_in_every_language():
    assert len(PAGES) >= 14
    for lang in LANGUAGES:
        assert sorted(p.stem for p in (TEXT_DIR / lang).glob("*.toml")) == PAGES, lang


@pytest.mark.parametrize("page", PAGES)
def test_same_keys_and_placeholders_in_both_languages(page):
    en, zh = texts(page, "en"), texts(page, "zh")
    assert set(en) == set(zh), f"{page}: only in en {set(en) - set(zh)}, only in zh {set(zh) - set(en)}"
    for key in en:
        assert _placeholders(en[key]) == _placeholders(zh[key]), f"{page}.{key}"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("page", PAGES)
def test_markdown_renders_with_nothing_left_over(page, lang):
    bad = {}
    for key, text in texts(page, lang).items():
        for word in WORDS:
            found = LEFTOVER.findall(_seen(_filled(text, word)))
            if found:
                bad[f"{key} with {word!r}"] = found
    assert not bad, f"{lang}/{page}.toml shows raw Markdown: {bad}"


def test_the_check_catches_bold_that_cannot_close():
    assert "**" in _seen("**温度（temperature）**让分布变尖")          # the known CommonMark trap
    assert "**" not in _seen("**温度（temperature）** 让分布变尖")       # a space lets it close
    assert "**" not in _seen("**温度**（temperature）让分布变尖")
    assert _filled("{bits:.2f} bits, {n:,} tokens, {share:.0%}, {name}") == "0.50 bits, 1,234 tokens, 50%, word"


def test_chinese_wrapped_over_lines_reads_without_stray_spaces():
    from explainer.text import unwrap_chinese
    assert unwrap_chinese("第一行\n第二行") == "第一行第二行"
    assert unwrap_chinese("小型的\n**前馈网络**。") == "小型的**前馈网络**。"
    assert unwrap_chinese("段落一。\n\n段落二") == "段落一。\n\n段落二"           # paragraphs stay apart
    assert unwrap_chinese("English line\nnext line") == "English line\nnext line"
    assert unwrap_chinese("中文 and\nEnglish") == "中文 and\nEnglish"
    for page in ("mlp", "attention", "overview", "position"):
        for key, value in texts(page, "zh").items():
            assert not re.search(r"[\u4e00-\u9fff]\n[\u4e00-\u9fff]", value), (page, key)
