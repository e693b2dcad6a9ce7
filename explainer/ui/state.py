"""Session state that the URL carries (deep links), with validation of every value.

The public API (pages, ui modules and tests use nothing else):

- values: :func:`get`, :func:`put`, :func:`push` (set and make its widget show it);
  :func:`prompt` and :func:`model_name`, which follow the language while the user chose none;
- widgets: :func:`bind` gives the key of a widget that shows a value, :func:`current` the
  value it will show, :func:`widget_key` its key (tests find widgets by it), :func:`forget_widget`;
- the page: :func:`set_page`, :func:`set_view`/:func:`view` (the page's View), notices;
- outside a run (tests, the AppTest harness): :func:`preset` and :func:`stored` on a
  session-state mapping;
- URL formats: :func:`heads_from_url`/:func:`heads_to_url`, :func:`layers_from_url`/
  :func:`layers_to_url`, :func:`compare_from_url`/:func:`compare_to_url`.

How it is kept: each value in ``st.session_state["v_<name>"]``, which survives page switches
(widget state does not). On a session's first run the URL's query parameters fill these in;
bad or stale values fall back to defaults with a notice. After every run the current values
are written back to the URL, so copying it reproduces the view.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, MutableMapping

import streamlit as st

from explainer import shortlinks
from explainer.view import View

MAX_PROMPT_CHARS = 100_000
MAX_URL_TEXT = 4_000          # longer prompts stay out of the URL (browsers and proxies cap its length)
DEFAULT_PROMPT = "The capital of France is Paris. The capital of Germany is"
DEFAULT_PROMPT_ZH = "法国的首都是巴黎。德国的首都是"
DEFAULT_PROMPTS = {"en": DEFAULT_PROMPT, "zh": DEFAULT_PROMPT_ZH}
DEFAULT_MODELS = {"en": "smollm2-135m", "zh": "gemma-3-270m"}    # when the user has chosen none
# Values whose default depends on the language: while a value is one of these defaults, it
# follows the language (中文 starts on a Chinese sentence and a Chinese word).
LANGUAGE_DEFAULTS = {"prompt": DEFAULT_PROMPTS, "word": {"en": "king", "zh": "猫"}}
MAX_TOKENS = 8192                                                 # the longest text the sidebar offers
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
    "max_tokens": Param(256, _ranged(int, 8, MAX_TOKENS)),
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
    "target": Param("", lambda raw: raw[:200]),        # the answer to explain: "" = the top prediction, "#id" or text
    "contrast": Param("", lambda raw: raw[:200]),      # … compared with this token ("" = none)
    "method": Param("integrated_gradients", _choice("integrated_gradients", "gradient_x_input", "occlusion")),
}


def get(name: str) -> Any:
    if name in LANGUAGE_DEFAULTS and follows_language(name):
        return LANGUAGE_DEFAULTS[name][get("lang")]
    return st.session_state.get(_VALUE + name, PARAMS[name].default)


def follows_language(name: str) -> bool:
    """Whether ``name`` still holds its language's default (never set, or set to exactly that),
    so that a language switch changes it too."""
    ss = st.session_state
    return bool(ss.get(_FOLLOW + name, _VALUE + name not in ss))


def prompt() -> str:
    """The text to read: what the user typed, or the default of the current language."""
    return get("prompt")


def model_name() -> str:
    """The model to load: the one the user chose, else the language's default (English: SmolLM2,
    中文: the multilingual Gemma 3). A chosen model is never switched."""
    return get("model") or DEFAULT_MODELS[get("lang")]


def put(name: str, value: Any) -> None:
    """Store a value and mirror it in the URL (only values that differ from the default)."""
    st.session_state[_VALUE + name] = value
    if name in LANGUAGE_DEFAULTS:
        st.session_state[_FOLLOW + name] = value == LANGUAGE_DEFAULTS[name][get("lang")]
    _sync_url(name, value)


def _sync_url(name: str, value: Any) -> None:
    param = PARAMS[name]
    default = value == LANGUAGE_DEFAULTS[name][get("lang")] if name in LANGUAGE_DEFAULTS else value == param.default
    too_long = name in LONG_TEXTS and len(str(value)) > MAX_URL_TEXT
    if name in LONG_TEXTS:
        _sync_ref(name + "_ref", str(value) if too_long else None)
    if default or too_long:
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


def write_url() -> None:
    """Write every value this session holds back to the URL (a page switch clears Streamlit's
    query parameters; a dropped connection must find the whole view there)."""
    for name in PARAMS:
        if _VALUE + name in st.session_state:
            put(name, get(name))


def push(name: str, value: Any) -> None:
    """Set a value and make its widget show it on the next run (call before st.rerun())."""
    put(name, value)
    st.session_state[_PUSH + name] = True


_VALUE, _PUSH, _WIDGET, _BOUND, _FOLLOW, _SCOPE = "v_", "_push_", "w_", "_bound_", "_follow_", "_scope_"


def widget_key(name: str) -> str:
    """The key of the widget bound to ``name`` (see :func:`bind`)."""
    return _WIDGET + name


def bind(name: str, value: Any, scope: Hashable = None) -> str:
    """The key of a widget showing ``value`` for ``name``.

    A live widget keeps what the user set; ``value`` is pushed into it only when the widget
    is new on this page, on a page switch, when ``scope`` changed (say, the text its options
    come from), or when :func:`push` asked for it (tour, examples).
    """
    ss = st.session_state
    key, page = widget_key(name), ss.get("_page_now")
    # Re-seed on a page switch too: a widget drawn by another page must not carry its state over.
    pushed = ss.pop(_PUSH + name, False)
    if key not in ss or pushed or ss.get(_BOUND + name) != page or ss.get(_SCOPE + name) != scope:
        ss[key] = value
    ss[_BOUND + name], ss[_SCOPE + name] = page, scope
    return key


def current(name: str) -> Any:
    """The value a widget will show: its live state on this page, unless a push waits, else the stored value."""
    ss = st.session_state
    live = ss.get(_BOUND + name) == ss.get("_page_now") and widget_key(name) in ss
    if live and not ss.get(_PUSH + name):
        return ss[widget_key(name)]
    return get(name)


def forget_widget(name: str) -> None:
    """Drop a widget's live state, so that it shows its stored value when next drawn."""
    st.session_state.pop(widget_key(name), None)


def set_page(page: str) -> None:
    """Record which page this run draws (widgets re-seed when it changes)."""
    st.session_state["_page_now"] = page


def set_view(page_view: View) -> None:
    """Keep the page's View for this run (charts read their labels and image format from it)."""
    st.session_state["_view"] = page_view


def view() -> View:
    """The View the current page built (English defaults before any page has)."""
    found = st.session_state.get("_view")
    return found if isinstance(found, View) else View.of("common", get("lang"))


def preset(session: MutableMapping[str, Any], **values: Any) -> None:
    """Store values in a session before a run, as :func:`push` would (tests, the AppTest harness)."""
    lang = values.get("lang") or (session[_VALUE + "lang"] if _VALUE + "lang" in session else PARAMS["lang"].default)
    for name, value in values.items():
        session[_VALUE + name] = value
        session[_PUSH + name] = True
        if name in LANGUAGE_DEFAULTS:                 # a preset value is the user's own unless it is that default
            session[_FOLLOW + name] = value == LANGUAGE_DEFAULTS[name][lang]


def stored(session: Mapping[str, Any], name: str) -> Any:
    """The value a run left in ``session`` for ``name`` (its default if none)."""
    key = _VALUE + name
    return session[key] if key in session else PARAMS[name].default


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
            except shortlinks.ShortLinkError as err:   # reworded by explainer.ui.stage in the page's language
                st.session_state.setdefault("_bad_ref", []).append((name, key[:60], err.reason))


def bad_url_values() -> list[tuple[str, str]]:
    """The URL values rejected on the first run (once)."""
    return st.session_state.pop("_bad_url", [])


# ------------------------------------------------------------------ URL formats


def heads_from_url(raw: str, n_layers: int, n_heads: int) -> tuple[frozenset[tuple[int, int]], list[str]]:
    """Parse "3.5,4.1" into {(3, 5), (4, 1)}; returns the valid pairs and the rejected parts."""
    heads: set[tuple[int, int]] = set()
    bad: list[str] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            layer, head = (int(x) for x in part.split("."))
        except ValueError:
            bad.append(part)
            continue
        if 0 <= layer < n_layers and 0 <= head < n_heads:
            heads.add((layer, head))
        else:
            bad.append(part)
    return frozenset(heads), bad


def heads_to_url(heads: frozenset[tuple[int, int]] | set[tuple[int, int]]) -> str:
    return ",".join(f"{layer}.{head}" for layer, head in sorted(heads))


def layers_from_url(raw: str, n_layers: int) -> tuple[frozenset[int], list[str]]:
    """Parse "2,7" into {2, 7}; returns the valid layers and the rejected parts."""
    layers: set[int] = set()
    bad: list[str] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        if part.isdigit() and int(part) < n_layers:
            layers.add(int(part))
        else:
            bad.append(part)
    return frozenset(layers), bad


def layers_to_url(layers: frozenset[int] | set[int] | list[int]) -> str:
    return ",".join(map(str, sorted(layers)))


UNTRAINED = "@untrained"          # ``compare``: the untrained model on the same prompt


def compare_from_url(raw: str) -> tuple[str, str]:
    """``compare`` → (mode, second prompt): "" is off, ``@untrained`` the untrained model, else a prompt."""
    if not raw:
        return "off", ""
    return ("untrained", "") if raw == UNTRAINED else ("prompt", raw)


def compare_to_url(mode: str, prompt: str = "") -> str:
    return {"off": "", "untrained": UNTRAINED}.get(mode, prompt)
