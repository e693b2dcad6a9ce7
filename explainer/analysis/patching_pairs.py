"""Ready prompt pairs for activation patching, per language: the same token count on the models
they name, and a clear answer flip there (measured; the README has the numbers and the
integration tests hold them)."""
from __future__ import annotations

from dataclasses import dataclass

from explainer.models import DEFAULT_NAME, EMBEDDED_NAMES, MULTILINGUAL_NAME

BOTH = (DEFAULT_NAME, MULTILINGUAL_NAME)


@dataclass(frozen=True)
class ReadyPair:
    """A clean prompt, its corrupted twin (one word changed), and the embedded models it works on."""

    clean: str
    corrupted: str
    models: tuple[str, ...] = BOTH


READY_PAIRS: dict[str, tuple[ReadyPair, ...]] = {
    "en": (
        ReadyPair("The capital of France is Paris. The capital of Germany is",      # ␣Berlin → ␣Rome
                  "The capital of France is Paris. The capital of Italy is"),
        ReadyPair("The Eiffel Tower is a famous building in the city of",           # ␣Paris → ␣Rome
                  "The Colosseum is a famous building in the city of"),
        ReadyPair("When Mary and John went to the store, John gave a drink to",     # ␣Mary → ␣John
                  "When Mary and John went to the store, Mary gave a drink to"),
    ),
    "zh": (
        ReadyPair("有一天，Tom和Anna去了商店，Tom把书给了",                           # Anna → Tom
                  "有一天，Tom和Anna去了商店，Anna把书给了"),
        ReadyPair("法国的首都是巴黎。德国的首都是", "法国的首都是巴黎。日本的首都是",   # 柏 → 东京
                  (MULTILINGUAL_NAME,)),
        ReadyPair("1月之后是2月，2月之后是3月，3月之后是",                            # 4 → 8
                  "1月之后是2月，2月之后是3月，7月之后是", (MULTILINGUAL_NAME,)),
    ),
}


def ready_pairs(lang: str, model_name: str) -> tuple[ReadyPair, ...]:
    """The pairs to offer in ``lang`` for a model: on an embedded model those measured on it; on any
    other model every pair of the language (their token counts may differ there)."""
    pairs = READY_PAIRS.get(lang, READY_PAIRS["en"])
    if model_name in EMBEDDED_NAMES:
        return tuple(p for p in pairs if model_name in p.models)
    return pairs
