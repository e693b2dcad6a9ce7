"""The one rule for showing a token: its bytes, its legible text, and how it looks on screen.

What results carry (data):
- :func:`token_bytes`: the exact bytes each token id stands for. Byte-level BPE (GPT-2, SmolLM2,
  Qwen) can split one character over several tokens; SentencePiece (Gemma) falls back to
  ``<0xNN>`` byte pieces. Special tokens keep their own text.
- :func:`legible`: a token's text, with nothing hidden: bytes that are not a whole UTF-8
  character become ``<0xE7>``, a newline ``↵``, a tab ``⇥``, other control characters and a bare
  U+FFFD their bytes (``<0x00>``). Spaces stay spaces (" Paris"). ``Trace.tokens``,
  :func:`token_labels` and :func:`vocabulary_labels` are all this. (Arrows, not the Unicode
  "control pictures" ␊ ␀: few fonts have those, and browsers drew them as empty boxes.)

What every page shows (screen), through these functions only:
- :func:`shown`: every space becomes ``␣`` ("␣Paris"), an empty token ``∅``.
- :func:`for_plotly`, :func:`for_html`, :func:`for_markdown`: ``shown`` plus the escaping each
  renderer needs (plotly reads ``<...>`` as markup, Markdown reads ``*_[]`` …).
  :func:`plotly_text` and :func:`markdown_text` escape user text (not a token) the same way.
- :func:`hex_bytes`: the bytes for a hover ("e7 8c ab").

Characters over several tokens: :func:`character_groups` finds the runs of tokens that spell
characters together (shown as one character spanning its chips); :func:`char_parts` says which
bytes of a character a predicted token is, given the bytes before it.
"""
from __future__ import annotations

import html
import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

SPACE, EMPTY = "␣", "∅"
_MARKDOWN = frozenset("\\`*_{}[]()<>#+-.!|~$:=\"'&%^@,;/?")   # ASCII punctuation CommonMark acts on


# ------------------------------------------------------------------------------ bytes
@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's byte -> printable-unicode table used by byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


@dataclass(frozen=True)
class _Kind:
    style: str                  # "byte" (GPT-2 byte-level BPE), "sp" (SentencePiece ▁) or "plain"
    special: frozenset[int]     # ids whose text is shown as it is (<|endoftext|>, <bos>, …)


_kinds: "weakref.WeakKeyDictionary[Any, _Kind]" = weakref.WeakKeyDictionary()
_kinds_lock = threading.Lock()


def _kind(tokenizer: Any) -> _Kind:
    """How ``tokenizer`` writes its pieces, read once from a sample of its vocabulary."""
    with _kinds_lock:
        found = _kinds.get(tokenizer)
    if found is None:
        n = len(tokenizer)
        sample = [p or "" for p in tokenizer.convert_ids_to_tokens(list(range(0, n, max(1, n // 4096))))]
        share = max(1, len(sample)) * 0.005
        style = ("byte" if sum(p.startswith("Ġ") for p in sample) > share
                 else "sp" if sum(p.startswith("▁") for p in sample) > share else "plain")
        special = {int(i) for i in (getattr(tokenizer, "added_tokens_decoder", None) or {})}
        special.update(int(i) for i in (getattr(tokenizer, "all_special_ids", None) or []))
        found = _Kind(style, frozenset(special))
        with _kinds_lock:
            _kinds[tokenizer] = found
    return found


def token_bytes(tokenizer: Any, ids: Sequence[int]) -> list[bytes]:
    """The raw bytes of each token id (what it contributes to the text).

    Tokenizers are not thread-safe: call under the model's lock (``token_labels`` does).
    """
    ids = [int(i) for i in ids]
    kind, decoder = _kind(tokenizer), _byte_decoder()
    out: list[bytes] = []
    for token_id, piece in zip(ids, tokenizer.convert_ids_to_tokens(ids)):
        piece = piece or ""
        if token_id in kind.special:
            out.append(piece.encode("utf-8"))
        elif kind.style == "byte" and all(ch in decoder for ch in piece):
            out.append(bytes(decoder[ch] for ch in piece))            # byte-level BPE
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            out.append(bytes([int(piece[3:5], 16)]))                  # SentencePiece byte fallback
        elif kind.style == "sp":
            out.append(piece.replace("▁", " ").encode("utf-8"))       # SentencePiece word piece
        else:
            out.append(tokenizer.decode([token_id]).encode("utf-8"))
    return out


# ----------------------------------------------------------------------------- labels
def legible(data: bytes) -> str:
    """A token's text from its bytes: stray bytes as ``<0xNN>``, newline ``↵``, tab ``⇥``, other controls as bytes."""
    out: list[str] = []
    while data:
        try:
            text, data = data.decode("utf-8"), b""
        except UnicodeDecodeError as err:
            text = data[:err.start].decode("utf-8")
            text += "".join(f"<0x{b:02X}>" for b in data[err.start:err.end])
            data = data[err.end:]
        out.append("".join(_visible(ch) for ch in text))
    return "".join(out)


_PICTURES = {"\n": "↵", "\t": "⇥"}


def _visible(ch: str) -> str:
    if ch in _PICTURES:
        return _PICTURES[ch]
    code = ord(ch)
    if code < 0x20 or 0x7F <= code < 0xA0 or ch == "\ufffd":   # other controls and a bare "�": the bytes
        return "".join(f"<0x{b:02X}>" for b in ch.encode("utf-8"))
    return ch


def token_labels(model: Any, ids: Sequence[int]) -> tuple[str, ...]:
    """The legible label of each token id of ``model`` (a LoadedModel), under its lock."""
    return tuple(legible(b) for b in token_pieces(model, ids))


def token_pieces(model: Any, ids: Sequence[int]) -> tuple[bytes, ...]:
    """The bytes of each token id of ``model`` (a LoadedModel), under its lock."""
    with model.tokenizer_lock:                               # the shared tokenizer is not thread-safe
        return tuple(token_bytes(model.tokenizer, ids))


def vocabulary_labels(model: Any) -> tuple[str, ...]:
    """One label per row of ``model``'s embedding matrix (``model.vocab_size`` of them).

    Rows the tokenizer does not know (a padded embedding matrix) are ``<unused N>``.
    """
    with model.tokenizer_lock:
        n = min(len(model.tokenizer), model.vocab_size)
        labels = [legible(b) for b in token_bytes(model.tokenizer, range(n))]
    return tuple(labels + [f"<unused {i}>" for i in range(n, model.vocab_size)])


# ----------------------------------------------------------------------------- screen
def shown(label: str) -> str:
    """A token label as every page shows it: spaces ``␣``, an empty token ``∅``."""
    return label.replace(" ", SPACE) if label else EMPTY


def for_plotly(label: str) -> str:
    """A token label for plotly text, ticks and hovers."""
    return plotly_text(shown(label))


def plotly_axis(labels: Sequence[str], start: int = 0) -> list[str]:
    """Unique axis labels for consecutive positions: ``"3: ␣Paris"`` (position ``start + i``)."""
    return [f"{start + i}: {for_plotly(label)}" for i, label in enumerate(labels)]


def for_html(label: str) -> str:
    """A token label inside HTML (chips); quotes escaped too, so it may sit in an attribute."""
    return html.escape(shown(label), quote=True)


def for_markdown(label: str) -> str:
    """A token label inside Markdown (st.markdown, captions, metrics' help, pills)."""
    return markdown_text(shown(label))


def plotly_text(text: str) -> str:
    """User text (not a token) made inert for plotly, which reads ``<...>`` as markup."""
    return html.escape(text, quote=False)


def markdown_text(text: str) -> str:
    """User text (not a token) made inert for Markdown: every ASCII punctuation mark escaped."""
    return "".join("\\" + ch if ch in _MARKDOWN else ch for ch in text)


def hex_bytes(data: bytes) -> str:
    """The bytes of a token for a hover: ``e7 8c ab``."""
    return data.hex(" ")


# ------------------------------------------------------------ characters over tokens
def _width(lead: int) -> int:
    """Bytes of the UTF-8 character that starts with byte ``lead`` (0: not a lead byte)."""
    return 1 if lead < 0x80 else 2 if 0xC2 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 \
        else 4 if 0xF0 <= lead < 0xF5 else 0


def pending(data: bytes) -> bytes:
    """The bytes at the end of ``data`` that begin a character still missing bytes (else b"")."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:                    # the last byte that is not a continuation
            return data[-back:] if _width(byte) > back else b""
    return b""


@dataclass(frozen=True)
class CharGroup:
    """Tokens ``start .. stop-1`` spell ``text`` together (no one of them is a whole character)."""

    start: int
    stop: int
    text: str                # legible text of their bytes together (with the bytes carried in)
    complete: bool           # False when the text ends before the last character's bytes do


def character_groups(pieces: Sequence[bytes], before: bytes = b"") -> tuple[CharGroup, ...]:
    """Runs of consecutive tokens joined by a character that straddles their boundary.

    ``before``: bytes that came before ``pieces[0]`` (a prompt before generated tokens); a
    character it began is completed, and spelled, by the first group.
    """
    groups: list[CharGroup] = []
    carry, start, data = pending(before), None, b""
    for i, piece in enumerate(pieces):
        if start is None:
            start, data = (i, carry + piece) if carry or pending(piece) else (None, b"")
        else:
            data += piece
        carry = pending(carry + piece)
        if start is not None and not carry:
            if i > start or legible(data) != legible(piece):
                groups.append(CharGroup(start, i + 1, legible(data), is_text(data)))
            start = None
    if start is not None and len(pieces) - start > 1:
        groups.append(CharGroup(start, len(pieces), legible(data), False))
    return tuple(groups)


def is_text(data: bytes) -> bool:
    """Whether ``data`` is whole UTF-8 characters (no character split off at either end)."""
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@dataclass(frozen=True)
class CharPart:
    """Bytes ``first``–``last`` (1-based) of a character of ``total`` bytes (0: its start is unseen)."""

    first: int
    last: int
    total: int


def char_parts(piece: bytes, before: bytes = b"") -> tuple[CharPart, ...]:
    """Which parts of characters ``piece`` holds when it follows ``before`` (empty: only whole ones).

    At most two: bytes that continue a character ``before`` began (or a continuation whose
    start is not in sight), and bytes that begin a character the piece does not finish.
    """
    parts: list[CharPart] = []
    carry = pending(before)
    lead = 0
    while lead < len(piece) and piece[lead] & 0xC0 == 0x80:
        lead += 1
    if lead:
        total = _width(carry[0]) if carry else 0
        done = len(carry) if total else 0
        parts.append(CharPart(done + 1, done + min(lead, total - done if total else lead), total))
    tail = pending(piece[lead:])
    if tail:
        parts.append(CharPart(1, len(tail), _width(tail[0])))
    return tuple(parts)


def describe_parts(parts: Sequence[CharPart], words: Mapping[str, str]) -> str:
    """Parts of characters in words, from the common texts (``char_part_*``, ``ordinal_*``)."""
    said = []
    for p in parts:
        if not p.total:
            said.append(words["char_part_orphan"])
        elif p.first == p.last:
            said.append(words["char_part_one"].format(nth=words[f"ordinal_{p.first}"], total=p.total))
        else:
            said.append(words["char_part_many"].format(first=p.first, last=p.last, total=p.total))
    return words["char_part_join"].join(said)


def part_words(piece: bytes, before: bytes, words: Mapping[str, str]) -> str:
    """In words, which parts of characters ``piece`` holds after ``before`` ("" when only whole ones)."""
    return describe_parts(char_parts(piece, before), words)
