"""How the text became tokens: pieces, their bytes, and what that means at scale."""
from __future__ import annotations

from dataclasses import dataclass

from explainer.trace import Trace

GIGABYTE = 10**9


@dataclass(frozen=True)
class TokenPiece:
    index: int
    token_id: int
    label: str          # legible text of the token (split characters shown as <0xNN>)
    hex_bytes: str      # e.g. "e7 8c"
    whole: bool         # True when the token's bytes are whole UTF-8 characters
    group: str          # the character(s) a run of split tokens spells together


@dataclass(frozen=True)
class TokenStats:
    pieces: tuple[TokenPiece, ...]
    n_tokens: int
    n_characters: int
    n_bytes: int
    chars_per_token: float
    bytes_per_token: float
    tokens_per_gigabyte: float   # tokens in 1 GB of text that tokenizes like this one
    vocab_size: int


def token_stats(trace: Trace) -> TokenStats:
    """Per-token pieces and ratios for the Tokens page."""
    data = b"".join(trace.token_bytes)
    groups = _groups(trace.token_bytes)
    pieces = tuple(
        TokenPiece(i, int(tid), label, raw.hex(" "), _is_whole(raw), groups[i])
        for i, (tid, label, raw) in enumerate(zip(trace.token_ids.tolist(), trace.tokens, trace.token_bytes)))
    n_chars = len(data.decode("utf-8", errors="replace"))
    n = trace.n_tokens
    return TokenStats(pieces, n, n_chars, len(data), n_chars / n, len(data) / n,
                      GIGABYTE / (len(data) / n), trace.vocab_size)


def _is_whole(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _groups(pieces: tuple[bytes, ...]) -> list[str]:
    """For runs of tokens that only together form valid UTF-8, the text they spell."""
    out = [""] * len(pieces)
    start = 0
    while start < len(pieces):
        end = start
        while end < len(pieces):
            try:
                text = b"".join(pieces[start:end + 1]).decode("utf-8")
            except UnicodeDecodeError:
                end += 1
                continue
            for i in range(start, end + 1):
                out[i] = text
            break
        else:                        # never completes (the text was cut mid-character)
            end = start
        start = end + 1
    return out
