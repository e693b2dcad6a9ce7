"""The one rule for showing a token: bytes, legible text, the screen form, split characters."""
from __future__ import annotations

import html
import json
import re
from dataclasses import replace

import explainer
from explainer import tokens
from explainer.analysis import attention as att
from explainer.analysis import generation as gen
from explainer.analysis import prediction as P
from explainer.analysis.tokens import token_stats
from explainer.analysis.vocabulary import prompt_vectors
from explainer.figures import attention as afigs
from explainer.figures import generation as gfigs
from explainer.figures import prediction as pfigs
from explainer.figures import tokens as tfigs
from explainer.figures import vocabulary as vfigs
from explainer.view import View

CAT, CAT_BYTES = "猫", "猫".encode()                     # e7 8c ab
ZH = "法国的首都是巴黎。德国的首都是"


def _visible_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_legible_keeps_text_and_shows_what_cannot_be_seen():
    assert tokens.legible(b" Paris") == " Paris"
    assert tokens.legible(CAT_BYTES[:1]) == "<0xE7>" and tokens.legible(CAT_BYTES[1:]) == "<0x8C><0xAB>"
    assert tokens.legible(b"a\n\t\x00\r\x7f") == "a↵⇥<0x00><0x0D><0x7F>"
    assert tokens.legible("\ufffd".encode()) == "<0xEF><0xBF><0xBD>"        # never a bare "�"
    assert tokens.legible(b" \xe7") == " <0xE7>"


def test_the_screen_form_and_its_escaping():
    assert tokens.shown(" Paris") == "␣Paris" and tokens.shown("") == "∅" and tokens.shown("a b") == "a␣b"
    assert tokens.for_plotly(" <b>") == "␣&lt;b&gt;" and tokens.for_plotly("<0xE7>") == "&lt;0xE7&gt;"
    assert tokens.for_html('"x"') == "&quot;x&quot;"
    assert tokens.for_markdown(" **a**") == r"␣\*\*a\*\*"
    assert tokens.plotly_axis([" a", "<b>"], 3) == ["3: ␣a", "4: &lt;b&gt;"]


def test_characters_split_over_tokens_are_grouped():
    pieces = [b" \xe7", b"\x8c", b"\xab", b" and", "🐱".encode()[:2], "🐱".encode()[2:], b"!"]
    groups = tokens.character_groups(pieces)
    assert [(g.start, g.stop, g.text, g.complete) for g in groups] == [(0, 3, " 猫", True), (4, 6, "🐱", True)]
    assert tokens.character_groups([b"\x8c\xab"], before=b"ab\xe7") == (tokens.CharGroup(0, 1, CAT, True),)
    assert tokens.character_groups([b"\xe7", b"\x8c"])[0].complete is False     # the text ends mid-character
    assert tokens.character_groups([b"abc", b" d"]) == ()


def test_which_bytes_of_a_character_a_token_is_in_both_languages():
    assert tokens.char_parts(CAT_BYTES[:1]) == (tokens.CharPart(1, 1, 3),)
    assert tokens.char_parts(CAT_BYTES[1:2], before=CAT_BYTES[:1]) == (tokens.CharPart(2, 2, 3),)
    assert tokens.char_parts(b"ab") == () and tokens.char_parts(CAT_BYTES) == ()
    en, zh = View.of("tokens", "en").common, View.of("tokens", "zh").common
    assert tokens.part_words(CAT_BYTES[:1], b"", en) == "first of 3 bytes of a character"
    assert tokens.part_words(CAT_BYTES[1:], CAT_BYTES[:1], en) == "bytes 2–3 of 3 of a character"
    assert tokens.part_words(CAT_BYTES[:1], b"", zh) == "一个字符 3 个字节中的第 1 个"
    assert tokens.part_words(CAT_BYTES[2:], b"", en) == en["char_part_orphan"]


def test_labels_come_from_the_real_tokenizer_under_the_models_lock(tiny_gpt2):
    ids = tiny_gpt2.tokenizer.encode(" 猫 Paris", add_special_tokens=False)
    pieces = tokens.token_pieces(tiny_gpt2, ids)
    assert b"".join(pieces).decode() == " 猫 Paris" and len(pieces) > 2        # 猫 is split into bytes
    assert tokens.token_labels(tiny_gpt2, ids) == tuple(tokens.legible(p) for p in pieces)
    labels = tokens.vocabulary_labels(tiny_gpt2)
    assert len(labels) == tiny_gpt2.vocab_size and labels[ids[-1]] == " Paris"


def test_every_character_of_a_chinese_prompt_is_on_the_tokens_page(tiny_gpt2):
    trace = explainer.trace(tiny_gpt2, ZH)
    stats = token_stats(trace)
    assert stats.groups and any(not p.whole for p in stats.pieces)               # byte pieces: a real test
    chips = tfigs.token_chips_html(stats, View.of("tokens", "zh"))
    seen = _visible_text(chips)
    assert all(ch in seen for ch in ZH)
    spans = re.findall(r'class="tok-char".*?title="([^"]*)"', chips)
    assert len(spans) == len(stats.groups) and "字节" in html.unescape(spans[0])
    assert [r["spells"] for r in stats.rows() if r["spells"]] and stats.rows()[0]["token"] == trace.tokens[0]


def test_generation_shows_a_character_once_its_bytes_are_complete():
    def step(i: int, data: bytes) -> gen.Step:
        return gen.Step(i, 100 + i, tokens.legible(data), 0.5, 1.0, (), (), (), (), 1.0, 1, True, None, False,
                        chosen_bytes=data)
    view = View.of("generation")
    first = gfigs.text_html(gen.SoFar("Cats:", (step(0, CAT_BYTES[:1]),)), view, 0)
    assert CAT not in _visible_text(first) and "first of 3 bytes" in first      # not yet, and it says so
    done = gfigs.text_html(gen.SoFar("Cats:", tuple(step(i, CAT_BYTES[i:i + 1]) for i in range(3))), view, 2)
    assert _visible_text(done).count(CAT) == 1 and done.count('class="tok"') == 3


def test_the_same_token_looks_the_same_on_every_page(tiny_gpt2):
    """Tokens, Embeddings, Attention and Next token draw one token (a leading space, a byte, markup) alike."""
    trace = explainer.trace(tiny_gpt2, "Paris <b> 猫 and Paris")
    labels = {lab for lab in trace.tokens if " " in lab or "<" in lab}
    assert any("<0x" in lab for lab in labels) and any(lab.startswith(" ") for lab in labels)
    pattern = att.pattern(trace, 0, window=att.window_for(trace.n_tokens))
    dist = replace(P.next_token_distribution(trace.next_token_logits, show=trace.n_tokens),
                   top_labels=trace.tokens, top_bytes=trace.token_bytes)
    drawn = {
        "tokens": _visible_text(tfigs.token_chips_html(token_stats(trace), View.of("tokens"))),
        "embeddings": json.dumps(list(vfigs.token_vectors_heatmap(prompt_vectors(trace), View.of("embeddings"))
                                      .data[0].y), ensure_ascii=False),
        "attention": json.dumps(list(afigs.attention_heatmap(pattern, View.of("attention")).data[1].x),
                                ensure_ascii=False),
        "next_token": json.dumps(list(pfigs.distribution_figure(dist, View.of("next_token")).data[0].y),
                                 ensure_ascii=False),
    }
    for label in labels:
        screen = tokens.shown(label)
        assert screen in drawn["tokens"], (label, "tokens")                     # HTML, unescaped for reading
        for page in ("embeddings", "attention", "next_token"):
            assert tokens.for_plotly(label) in drawn[page], (label, page)        # plotly text, escaped

