"""Token ids -> the exact bytes each token stands for, and a legible label for each.

Byte-level BPE (GPT-2, SmolLM) can split one character (Chinese, emoji) over several
tokens; decoding such a piece alone gives "�". We recover each token's raw bytes and show
pieces that are not whole UTF-8 characters as ``<0xE7><0x8C>`` instead.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence


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


def token_bytes(tokenizer: Any, ids: Sequence[int]) -> list[bytes]:
    """The raw bytes of each token id (what it contributes to the text)."""
    pieces = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    decoder = _byte_decoder()
    out: list[bytes] = []
    for token_id, piece in zip(ids, pieces):
        piece = piece or ""
        if piece and all(ch in decoder for ch in piece):
            out.append(bytes(decoder[ch] for ch in piece))            # byte-level BPE
        elif piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
            out.append(bytes([int(piece[3:5], 16)]))                  # SentencePiece byte fallback
        elif "▁" in piece:
            out.append(piece.replace("▁", " ").encode("utf-8"))       # SentencePiece word piece
        else:
            out.append(tokenizer.decode([int(token_id)]).encode("utf-8"))
    return out


def legible(data: bytes) -> str:
    """A label for one token's bytes: its text when it is whole UTF-8, else its bytes.

    Control characters become their visible Unicode pictures (newline -> "␊").
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _mixed(data)
    return "".join(_visible(ch) for ch in text)


def _mixed(data: bytes) -> str:
    """Decode what is whole, show the stray bytes of split characters as <0xNN>."""
    parts: list[str] = []
    i = 0
    while i < len(data):
        for width in (1, 2, 3, 4):
            chunk = data[i:i + width]
            try:
                parts.append("".join(_visible(ch) for ch in chunk.decode("utf-8")))
                i += width
                break
            except UnicodeDecodeError:
                continue
        else:
            parts.append(f"<0x{data[i]:02X}>")
            i += 1
    return "".join(parts)


def _visible(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "␡"
    return ch


def token_labels(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Legible labels for a sequence of token ids."""
    return [legible(b) for b in token_bytes(tokenizer, ids)]
