"""The session's values (layer, head, prompt, …): kept across pages, mirrored in the URL.

The public API (pages, ui modules and tests use nothing else; widgets bind to these values
through :mod:`explainer.ui.frame.binding`):

- values: :func:`get`, :func:`put`, :func:`push` (set and make its widget show it);
  :func:`prompt` and :func:`model_name`, which follow the language while the user chose none;
- the link: :func:`load_query_params` (first run), :func:`write_url` (every run),
  :func:`bad_url_values` and :func:`bad_short_links` (what the link held that could not be used);
- outside a run (tests, the AppTest harness): :func:`preset` and :func:`stored` on a
  session-state mapping.

How it is kept: each value in ``st.session_state["v_<name>"]``, which survives page switches
(widget state does not). On a session's first run the URL's query parameters fill these in;
bad or stale values fall back to defaults with a notice. Every value that differs from its
default is written to the URL as it is set, so copying the URL reproduces the view. What a
value may be is :mod:`explainer.ui.frame.params`'s.
"""
from __future__ import annotations

from typing import Any, Mapping, MutableMapping

import streamlit as st

from explainer import offer, shortlinks
from explainer.ui.frame.params import (DEFAULT_MODELS, LANGUAGE_DEFAULTS, LONG_TEXTS, MAX_URL_TEXT, PARAMS,
                                       is_default, url_text)

VALUE, PUSH, FOLLOW = "v_", "_push_", "_follow_"      # session-state key prefixes (PUSH is read by binding)


def get(name: str) -> Any:
    if name in LANGUAGE_DEFAULTS and follows_language(name):
        return LANGUAGE_DEFAULTS[name][get("lang")]
    return st.session_state.get(VALUE + name, PARAMS[name].default)


def follows_language(name: str) -> bool:
    """Whether ``name`` still holds its language's default (never set, or set to exactly that),
    so that a language switch changes it too."""
    ss = st.session_state
    return bool(ss.get(FOLLOW + name, VALUE + name not in ss))


def prompt() -> str:
    """The text to read: what the user typed, or the default of the current language."""
    return get("prompt")


def model_name() -> str:
    """The model to load: the one the user chose, else the language's default (English: SmolLM2,
    中文: the multilingual Gemma 3). A chosen model is never switched."""
    return get("model") or offer.default_for(DEFAULT_MODELS[get("lang")])


def put(name: str, value: Any) -> None:
    """Store a value and mirror it in the URL (only values that differ from the default)."""
    st.session_state[VALUE + name] = value
    if name in LANGUAGE_DEFAULTS:
        st.session_state[FOLLOW + name] = value == LANGUAGE_DEFAULTS[name][get("lang")]
    _sync_url(name, value)


def push(name: str, value: Any) -> None:
    """Set a value and make its widget show it on the next run (call before st.rerun())."""
    put(name, value)
    st.session_state[PUSH + name] = True


def _sync_url(name: str, value: Any) -> None:
    too_long = name in LONG_TEXTS and len(str(value)) > MAX_URL_TEXT
    if name in LONG_TEXTS:
        _sync_ref(name + "_ref", str(value) if too_long else None)
    if is_default(name, value, get("lang")) or too_long:
        if name in st.query_params:
            del st.query_params[name]
        return
    if st.query_params.get(name) != url_text(value):
        st.query_params[name] = url_text(value)


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


def write_url() -> None:
    """Write every value this session holds back to the URL (a page switch clears Streamlit's
    query parameters; a dropped connection must find the whole view there)."""
    for name in PARAMS:
        if VALUE + name in st.session_state:
            put(name, get(name))


def load_query_params() -> None:
    """On a session's first run, take values from the URL; bad ones keep their defaults.

    The rejected (name, value) pairs wait until the page can word a notice in the right
    language (see :func:`bad_url_values` and :func:`bad_short_links`).
    """
    if st.session_state.get("_query_loaded"):
        return
    st.session_state["_query_loaded"] = True
    bad = []
    items = sorted(st.query_params.to_dict().items(), key=lambda kv: kv[0] != "lang")   # the language first
    for name, raw in items:
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
            except shortlinks.ShortLinkError as err:
                st.session_state.setdefault("_bad_ref", []).append((name, key[:60], err.reason))


def bad_url_values() -> list[tuple[str, str]]:
    """The URL values rejected on the first run (once)."""
    return st.session_state.pop("_bad_url", [])


def bad_short_links() -> list[tuple[str, str, str]]:
    """(name, key, reason) of every short link of the first run that could not be read (once)."""
    return st.session_state.pop("_bad_ref", [])


def preset(session: MutableMapping[str, Any], **values: Any) -> None:
    """Store values in a session before a run, as :func:`push` would (tests, the AppTest harness)."""
    lang = values.get("lang") or (session[VALUE + "lang"] if VALUE + "lang" in session else PARAMS["lang"].default)
    for name, value in values.items():
        session[VALUE + name] = value
        session[PUSH + name] = True
        if name in LANGUAGE_DEFAULTS:                 # a preset value is the user's own unless it is that default
            session[FOLLOW + name] = value == LANGUAGE_DEFAULTS[name][lang]


def stored(session: Mapping[str, Any], name: str) -> Any:
    """The value a run left in ``session`` for ``name`` (its default if none)."""
    key = VALUE + name
    return session[key] if key in session else PARAMS[name].default
