"""A tiny tokenizer built from the corpus: words for English, characters for Chinese.

Built with the ``tokenizers`` library and wrapped as ``PreTrainedTokenizerFast`` so that
``save_pretrained`` writes a folder ``AutoTokenizer.from_pretrained`` loads back.
"""
from __future__ import annotations

from collections import Counter

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from explainer.learning.corpus import Language, builtin_text

UNK, PAD, MASK = "[UNK]", "[PAD]", "[MASK]"
SPECIAL_TOKENS: tuple[str, ...] = (UNK, PAD, MASK)  # ids 0, 1, 2


def _pre_tokenizer(language: Language) -> pre_tokenizers.PreTokenizer:
    if language == "zh":
        # Every non-space character is its own token (Chinese has no spaces between words).
        return pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")
    # English: runs of letters/digits are words; every punctuation mark stands alone.
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])


def _pieces(text: str, language: Language) -> list[str]:
    """The pre-tokenized pieces of text (after lower-casing), as the tokenizer sees them."""
    if language == "en":
        text = text.lower()
    pieces = _pre_tokenizer(language).pre_tokenize_str(text)
    return [p for p, _ in pieces if p.strip()]


def build_tokenizer(language: Language, text: str | None = None) -> PreTrainedTokenizerFast:
    """Build a word-level (en) or character-level (zh) tokenizer from text.

    The vocabulary is the special tokens followed by every piece of ``text`` (default: all
    built-in sentences of the language), most frequent first, ties broken alphabetically,
    so the same text always gives the same ids.
    """
    text = builtin_text(language) if text is None else text
    counts = Counter(_pieces(text, language))
    words = sorted(counts, key=lambda w: (-counts[w], w))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    if language == "en":
        core.normalizer = normalizers.Lowercase()
        core.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins with spaces, "red ." -> "red."
    else:
        core.decoder = decoders.Fuse()  # characters joined without spaces
    core.pre_tokenizer = _pre_tokenizer(language)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token=UNK, pad_token=PAD,
                                  mask_token=MASK, clean_up_tokenization_spaces=False)
    tok.model_max_length = 64
    return tok


def special_ids(tokenizer: PreTrainedTokenizerFast) -> tuple[int, ...]:
    """Ids of the special tokens ([UNK], [PAD], [MASK])."""
    return tuple(sorted(set(tokenizer.all_special_ids)))


def probes_from_lines(tokenizer: PreTrainedTokenizerFast, lines: tuple[str, ...] | list[str],
                      n: int = 4) -> tuple[str, ...]:
    """Probe prompts for any corpus: the first n distinct sentences without their last word.

    "the apple is red ." -> "the apple is" (trailing punctuation and the word before it are cut).
    """
    probes: list[str] = []
    for line in lines:
        tokens = tokenizer.tokenize(line)
        while tokens and not any(ch.isalnum() for ch in tokens[-1]):
            tokens.pop()
        prompt = tokenizer.convert_tokens_to_string(tokens[:-1]).strip() if len(tokens) >= 3 else ""
        if prompt and prompt not in probes:
            probes.append(prompt)
        if len(probes) == n:
            break
    return tuple(probes)
