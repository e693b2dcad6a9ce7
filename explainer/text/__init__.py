"""Explanations and labels, one TOML file per page and language.

``texts("tokens", "zh")`` reads ``explainer/text/zh/tokens.toml`` and returns a flat
mapping of key -> string. English and Chinese files must have the same keys (a test
checks it). Strings may hold ``{name}`` placeholders filled with ``str.format``.
"""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

LANGUAGES = ("en", "zh")
TEXT_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def texts(page: str, lang: str = "en") -> Mapping[str, str]:
    """All strings of one page in one language (read once, then cached)."""
    if lang not in LANGUAGES:
        lang = "en"
    path = TEXT_DIR / lang / f"{page}.toml"
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return MappingProxyType(_flatten(data))


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
