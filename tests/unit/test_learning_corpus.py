"""Built-in corpora, the deterministic held-out split, and the tiny tokenizers."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from explainer.learning import SPECIAL_TOKENS, build_tokenizer, corpus_from_text, load_corpus

LEARNING_DIR = Path(__file__).resolve().parents[2] / "explainer" / "learning"


@pytest.mark.parametrize("name", ["facts_en", "facts_zh", "finetune_en", "finetune_zh"])
def test_builtin_corpora_load_and_split(name: str) -> None:
    corpus = load_corpus(name)
    assert len(corpus.lines) >= (300 if name.startswith("facts") else 100)
    assert len(corpus.heldout) == len(corpus.lines) // 10
    assert load_corpus(name) == corpus  # deterministic


def test_split_takes_every_tenth_line() -> None:
    corpus = corpus_from_text("\n".join(f"s{i}" for i in range(1, 24)) + "\n\n", "en")
    assert corpus.heldout == ("s10", "s20")
    assert len(corpus.train) == 21
    with pytest.raises(ValueError):
        corpus_from_text("", "en")
    with pytest.raises(ValueError):
        load_corpus("nope")


def test_english_tokenizer_is_word_level_lowercase() -> None:
    tok = build_tokenizer("en")
    assert tok.convert_ids_to_tokens([0, 1, 2]) == list(SPECIAL_TOKENS)
    ids = tok("The apple is RED. [MASK]", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["the", "apple", "is", "red", ".", "[MASK]"]
    assert tok.convert_ids_to_tokens(tok("zebra")["input_ids"]) == ["[UNK]"]
    assert tok.decode(ids[:5]) == "the apple is red."


def test_chinese_tokenizer_is_character_level() -> None:
    tok = build_tokenizer("zh")
    ids = tok("苹果是红色的。", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == list("苹果是红色的。")
    assert tok.decode(ids) == "苹果是红色的。"
    assert tok.mask_token_id == 2 and tok.pad_token_id == 1 and tok.unk_token_id == 0


def test_tokenizer_save_and_autotokenizer_round_trip(tmp_path: Path) -> None:
    tok = build_tokenizer("zh")
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "小狗会汪汪叫。[MASK]"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.mask_token == "[MASK]" and len(loaded) == len(tok)


def test_no_streamlit_and_no_global_thread_setting_in_learning() -> None:
    for path in LEARNING_DIR.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "import streamlit" not in source and "from streamlit" not in source, path
        # torch.set_num_threads is process-global (would slow every user); omp_ is per thread
        assert not re.search(r"(?<!omp_)set_num_threads\(", source), path
