"""Explanations and labels, one TOML file per page and language.

``texts("tokens", "zh")`` reads ``explainer/text/zh/tokens.toml`` and returns a flat
mapping of key -> string. English and Chinese files must have the same keys (a test
checks it). Strings may hold ``{name}`` placeholders filled with ``str.format``.

A long Chinese paragraph may be wrapped over several lines of its file; Markdown turns each line
break into a space, which Chinese does not put between characters. So a single line break with
Chinese on either side is removed when the text is read (blank lines still separate paragraphs;
keys ending in ``_default`` are data, one item a line, and stay as written).
"""
from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

LANGUAGES = ("en", "zh")
TEXT_DIR = Path(__file__).resolve().parent
_WIDE = r"\u3000-\u303f\u4e00-\u9fff\uff00-\uffef\u201c\u201d"     # CJK, its punctuation, full-width forms
# one line break between Chinese (emphasis marks like ** may stand next to it)
_WRAP = re.compile(rf"([{_WIDE}][*_]{{0,2}})[ \t]*\n[ \t]*([*_]{{0,2}}[{_WIDE}])")


@lru_cache(maxsize=None)
def texts(page: str, lang: str = "en") -> Mapping[str, str]:
    """All strings of one page in one language (read once, then cached)."""
    if lang not in LANGUAGES:
        lang = "en"
    path = TEXT_DIR / lang / f"{page}.toml"
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    flat = _flatten(data)
    if lang == "zh":                      # keys ending in _default hold data (one item a line): kept as written
        flat = {k: v if k.endswith("_default") else unwrap_chinese(v) for k, v in flat.items()}
    return MappingProxyType(flat)


def unwrap_chinese(text: str) -> str:
    """Join lines a file wrapped in the middle of Chinese text (no space between characters)."""
    return _WRAP.sub(r"\1\2", text)


def pages_with_text() -> list[str]:
    """Names of every page that has a text file in English."""
    return sorted(p.stem for p in (TEXT_DIR / "en").glob("*.toml"))


def _flatten(data: dict, prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat
