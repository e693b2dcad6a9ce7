"""Session state that the URL carries (deep links), with validation of every value.

Each value lives in ``st.session_state["v_<name>"]``, which survives page switches (widget
state does not). On a session's first run the URL's query parameters fill these in; bad
or stale values fall back to defaults with a notice. After every run the current values
are written back to the URL, so copying it reproduces the view.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st

from explainer import shortlinks

MAX_PROMPT_CHARS = 100_000
MAX_URL_TEXT = 4_000          # longer prompts stay out of the URL (browsers and proxies cap its length)
DEFAULT_PROMPT = "The capital of France is Paris. The capital of Germany is"
DEFAULT_PROMPT_ZH = "法国的首都是巴黎。德国的首都是"
LONG_TEXTS = ("prompt", "compare")   # past MAX_URL_TEXT the URL carries "<name>_ref", a short-link key


def _bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _ranged(kind: Callable[[str], Any], lo: float, hi: float) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = kind(raw)
        if not lo <= value <= hi:
            raise ValueError(raw)
        return value
    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(raw)
        return raw
    return parse


def _text(raw: str) -> str:
    return raw[:MAX_PROMPT_CHARS]


@dataclass(frozen=True)
class Param:
    default: Any
    parse: Callable[[str], Any]


# Everything a URL can carry. Model-dependent ranges (layer, head, token) are checked by
# the widgets that use them, which clamp and report stale values.
PARAMS: dict[str, Param] = {
    "model": Param("", lambda raw: raw.strip()[:300]),
    "prompt": Param(DEFAULT_PROMPT, _text),
    "lang": Param("en", _choice("en", "zh")),
    "max_tokens": Param(256, _ranged(int, 8, 1024)),
    "device": Param("auto", _choice("auto", "cpu", "cuda", "mps")),
    "presenter": Param(False, _bool),
    "layer": Param(0, _ranged(int, 0, 10_000)),
    "head": Param(0, _ranged(int, 0, 10_000)),
    "token": Param(-1, _ranged(int, -1, 100_000)),
    "neuron": Param(0, _ranged(int, 0, 1_000_000)),
    "temp": Param(1.0, _ranged(float, 0.05, 5.0)),
    "top_k": Param(0, _ranged(int, 0, 1_000_000)),
    "top_p": Param(1.0, _ranged(float, 0.01, 1.0)),
    "seed": Param(0, _ranged(int, 0, 2**31 - 1)),
    "decode": Param("greedy", _choice("greedy", "sample")),
    "tour": Param(-1, _ranged(int, -1, 100)),
    "window": Param(-1, _ranged(int, -1, 100_000)),    # first position of a windowed view; -1 = auto
    "compare": Param("", lambda raw: raw[:MAX_PROMPT_CHARS]),
    "off": Param("", lambda raw: raw[:2000]),          # heads switched off, "layer.head,…"
    "mlp_off": Param("", lambda raw: raw[:500]),       # MLP layers switched off, "2,7"
    "img": Param("png", _choice("png", "svg")),
    "word": Param("king", lambda raw: raw.strip()[:60]),
}


def get(name: str) -> Any:
    return st.session_state.get("v_" + name, PARAMS[name].default)


def put(name: str, value: Any) -> None:
    """Store a value and mirror it in the URL (only values that differ from the default)."""
    st.session_state["v_" + name] = value
    _sync_url(name, value)


def _sync_url(name: str, value: Any) -> None:
    param = PARAMS[name]
    too_long = name in LONG_TEXTS and len(str(value)) > MAX_URL_TEXT
    if name in LONG_TEXTS:
        _sync_ref(name + "_ref", str(value) if too_long else None)
    if value == param.default or too_long:
        if name in st.query_params:
            del st.query_params[name]
        return
    raw = ("1" if value else "0") if isinstance(value, bool) else str(value)
    if st.query_params.get(name) != raw:
        st.query_params[name] = raw


def _sync_ref(ref: str, text: str | None) -> None:
    """A text too long for the URL travels as its short-link key (explainer.shortlinks)."""
    try:
        key = shortlinks.save(text) if text is not None else None
    except (shortlinks.ShortLinkError, OSError):
        key = None                                # the disk refused: the URL goes without the text
    if key is None:
        if ref in st.query_params:
            del st.query_params[ref]
    elif st.query_params.get(ref) != key:
        st.query_params[ref] = key


def push(name: str, value: Any) -> None:
    """Set a value and make its widget show it on the next run (call before st.rerun())."""
    put(name, value)
    st.session_state["_push_" + name] = True


def notice(message: str) -> None:
    """Queue a message to show at the top of the page (e.g. a bad URL value)."""
    st.session_state.setdefault("_notices", []).append(message)


def pop_notices() -> list[str]:
    return st.session_state.pop("_notices", [])


def load_query_params() -> None:
    """On a session's first run, take values from the URL; bad ones keep their defaults.

    The rejected (name, value) pairs wait in ``_bad_url`` until the page can word a notice
    in the right language (see :func:`bad_url_values`).
    """
    if st.session_state.get("_query_loaded"):
        return
    st.session_state["_query_loaded"] = True
    bad = []
    for name, raw in st.query_params.to_dict().items():
        param = PARAMS.get(name)
        if param is None:
            continue
        try:
            put(name, param.parse(raw))
        except (ValueError, TypeError, OverflowError):
            bad.append((name, raw[:60]))
    st.session_state["_bad_url"] = bad
    for name in LONG_TEXTS:                       # a long text by its short link: after the plain values
        key = st.query_params.get(name + "_ref")
        if key is not None:
            try:
                put(name, shortlinks.load(key))
            except shortlinks.ShortLinkError as err:   # reworded by explainer.ui.stage in the page's language
                st.session_state.setdefault("_bad_ref", []).append((name, key[:60], err.reason))


def bad_url_values() -> list[tuple[str, str]]:
    """The URL values rejected on the first run (once)."""
    return st.session_state.pop("_bad_url", [])
