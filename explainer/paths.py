"""Where LLM Explainer keeps files it builds once (converted models, vocabulary maps)."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "LLM_EXPLAINER_CACHE"
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS = REPO_ROOT / "assets"


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the cache root.

    The root is ``$LLM_EXPLAINER_CACHE`` when set, else ``$XDG_CACHE_HOME/llm-explainer``
    (``~/.cache/llm-explainer``).
    """
    root = os.environ.get(CACHE_ENV)
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = Path(xdg) / "llm-explainer"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
