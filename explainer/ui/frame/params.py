"""What a URL can carry: every value's name, default and parser, and the formats of its lists.

No Streamlit here: a plain vocabulary that :mod:`explainer.ui.frame.state` keeps and mirrors in
the URL, and that pages and tests read (defaults, limits, the ``"layer.head,…"`` format).
Model-dependent ranges (layer, head, token) are checked by the widgets that use them, which
clamp and report stale values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from explainer.shape import check_head, check_layer

MAX_PROMPT_CHARS = 200_000    # a whole 32,768-token context of English text fits
MAX_URL_TEXT = 4_000          # longer prompts stay out of the URL (browsers and proxies cap its length)
MAX_PAIR_CHARS = 400          # a patching prompt (it is at most a few dozen tokens)
DEFAULT_PROMPT = "The capital of France is Paris. The capital of Germany is"
DEFAULT_PROMPT_ZH = "法国的首都是巴黎。德国的首都是"
DEFAULT_PROMPTS = {"en": DEFAULT_PROMPT, "zh": DEFAULT_PROMPT_ZH}
DEFAULT_MODELS = {"en": "smollm2-135m", "zh": "gemma-3-270m"}    # when the user has chosen none
# Values whose default depends on the language: while a value is one of these defaults, it
# follows the language (中文 starts on a Chinese sentence and a Chinese word).
LANGUAGE_DEFAULTS = {"prompt": DEFAULT_PROMPTS, "word": {"en": "king", "zh": "猫"}}
MAX_TOKENS = 32_768           # the longest text the sidebar offers (Gemma 3's context; each model's own is less)
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
    "clean": Param("", lambda raw: raw[:MAX_PAIR_CHARS]),      # patching: "" = the first ready pair
    "corrupted": Param("", lambda raw: raw[:MAX_PAIR_CHARS]),
    "site": Param("resid_pre", _choice("resid_pre", "attn_out", "mlp_out", "heads")),
    "cell": Param("", lambda raw: raw[:24]),                   # the cell run again, "layer.index" ("" = strongest)
}


def is_default(name: str, value: Any, lang: str) -> bool:
    """Whether ``value`` is the default of ``name`` in ``lang`` (a default stays out of the URL)."""
    if name in LANGUAGE_DEFAULTS:
        return value == LANGUAGE_DEFAULTS[name][lang]
    return value == PARAMS[name].default


def url_text(value: Any) -> str:
    """How a value is written in the URL (booleans as 1 / 0)."""
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


# ------------------------------------------------------------------ list formats


def heads_from_url(raw: str, n_layers: int, n_heads: int) -> tuple[frozenset[tuple[int, int]], list[str]]:
    """Parse "3.5,4.1" into {(3, 5), (4, 1)}; returns the valid pairs and the rejected parts."""
    heads: set[tuple[int, int]] = set()
    bad: list[str] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            layer, head = (int(x) for x in part.split("."))
            check_head(head, n_heads, layer, n_layers)
        except ValueError:
            bad.append(part)
            continue
        heads.add((layer, head))
    return frozenset(heads), bad


def heads_to_url(heads: frozenset[tuple[int, int]] | set[tuple[int, int]]) -> str:
    return ",".join(f"{layer}.{head}" for layer, head in sorted(heads))


def layers_from_url(raw: str, n_layers: int) -> tuple[frozenset[int], list[str]]:
    """Parse "2,7" into {2, 7}; returns the valid layers and the rejected parts."""
    layers: set[int] = set()
    bad: list[str] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            if not part.isdigit():                      # "+2" or "2.0" are not layer numbers
                raise ValueError(part)
            layers.add(check_layer(int(part), n_layers))
        except ValueError:
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
