"""Built-in training texts for the Learning page, and the deterministic held-out split.

Each corpus is a UTF-8 text file with one short sentence per line under
``assets/corpus/``. Every ``heldout_every``-th line (1-based: lines 10, 20, ...) is
held out, so the split never depends on a random seed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from explainer.paths import ASSETS

Language = Literal["en", "zh"]
CORPUS_DIR = ASSETS / "corpus"
CORPUS_NAMES: tuple[str, ...] = ("facts_en", "facts_zh", "finetune_en", "finetune_zh")
HELDOUT_EVERY = 10

# Prompts whose next-token distribution we watch while the model learns.
PROBES: dict[str, tuple[str, ...]] = {
    "en": ("the apple is", "the sky is", "the cow says", "the cat eats"),
    "zh": ("苹果是", "天空是", "小狗会", "猫喜欢吃"),
}
# A sentence whose attention pattern is shown before and after training.
ATTENTION_SENTENCE: dict[str, str] = {
    "en": "the apple on the table is red .",
    "zh": "桌子上的苹果是红色的。",
}


@dataclass(frozen=True)
class Corpus:
    """A small text split into training and held-out sentences."""

    name: str
    language: Language
    train: tuple[str, ...]
    heldout: tuple[str, ...]

    @property
    def lines(self) -> tuple[str, ...]:
        return self.train + self.heldout


def split_lines(lines: list[str], heldout_every: int = HELDOUT_EVERY) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split non-empty lines into (train, heldout): every n-th line is held out."""
    kept = [line.strip() for line in lines if line.strip()]
    if heldout_every <= 1:
        return tuple(kept), ()
    train = tuple(l for i, l in enumerate(kept, 1) if i % heldout_every)
    heldout = tuple(l for i, l in enumerate(kept, 1) if not i % heldout_every)
    return train, heldout


def corpus_from_text(text: str, language: Language, name: str = "custom",
                     heldout_every: int = HELDOUT_EVERY) -> Corpus:
    """Make a Corpus from any text with one sentence per line."""
    if language not in PROBES:
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    train, heldout = split_lines(text.splitlines(), heldout_every)
    if not train:
        raise ValueError("the corpus has no training sentences")
    return Corpus(name=name, language=language, train=train, heldout=heldout)


def load_corpus(name: str = "facts_en") -> Corpus:
    """Load a built-in corpus by name ("facts_en", "facts_zh", "finetune_en", "finetune_zh")."""
    if name not in CORPUS_NAMES:
        raise ValueError(f"unknown corpus {name!r}; choose one of {CORPUS_NAMES}")
    text = (CORPUS_DIR / f"{name}.txt").read_text(encoding="utf-8")
    language: Language = "zh" if name.endswith("_zh") else "en"
    return corpus_from_text(text, language, name=name)


def facts_corpus(language: Language) -> Corpus:
    return load_corpus(f"facts_{language}")


def finetune_corpus(language: Language) -> Corpus:
    return load_corpus(f"finetune_{language}")


def builtin_text(language: Language) -> str:
    """All built-in sentences of one language (facts + fine-tuning), for the vocabulary."""
    return "\n".join(
        (CORPUS_DIR / f"{kind}_{language}.txt").read_text(encoding="utf-8")
        for kind in ("facts", "finetune")
    )


MIN_CUSTOM_LINES = 10  # with every 10th line held out, fewer leaves nothing to test on
MAX_CUSTOM_CHARS = 20_000  # a few seconds of training cannot learn more than this


def detect_language(text: str) -> Language:
    """"zh" when at least a third of the non-space characters are CJK ideographs, else "en"."""
    chars = [c for c in text if not c.isspace()]
    cjk = sum("\u3400" <= c <= "\u9fff" for c in chars)
    return "zh" if chars and cjk / len(chars) >= 1 / 3 else "en"


def custom_sentences(text: str) -> list[str]:
    """One sentence per line; text with too few lines is also split after . ! ? 。！？"""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) >= MIN_CUSTOM_LINES:
        return lines
    parts = re.split(r"(?<=[.!?。！？])\s*", " ".join(lines))
    return [p.strip() for p in parts if p.strip()]
