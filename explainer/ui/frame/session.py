"""Results one session keeps between its reruns: one per name, recomputed only when their key changes.

For what costs this session time and belongs to it alone (say, a training run's comparison), held
in ``st.session_state[name]`` as ``{"key": key, "value": value}``. What every session shares is
cached elsewhere: models and traces in :mod:`explainer.ui.frame.shared`, results of a trace or a
model in :mod:`explainer.memo`.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable

import streamlit as st


def kept(name: str, key: Hashable, compute: Callable[[], Any]) -> Any:
    """The value kept under ``name`` for ``key``, computing (and keeping) it when the key changed."""
    held = st.session_state.get(name)
    if held is None or held["key"] != key:
        return keep(name, key, compute())
    return held["value"]


def keep(name: str, key: Hashable, value: Any) -> Any:
    """Keep ``value`` under ``name`` for ``key`` (replacing what was there); returns it."""
    st.session_state[name] = {"key": key, "value": value}
    return value


def stored(name: str, key: Hashable) -> Any:
    """The value kept under ``name`` if it was kept for ``key``, else None (never computes)."""
    held = st.session_state.get(name)
    return held["value"] if held is not None and held["key"] == key else None
