"""How the text became tokens: pieces, their bytes, the characters they spell, and the scale."""
from __future__ import annotations

from dataclasses import dataclass

from explainer.tokens import CharGroup, character_groups, hex_bytes, is_text
from explainer.trace import Trace

GIGABYTE = 10**9


@dataclass(frozen=True)
class TokenPiece:
    index: int
    token_id: int
    label: str          # legible text of the token (split characters shown as <0xNN>)
    hex_bytes: str      # e.g. "e7 8c"
    whole: bool         # True when the token's bytes are whole UTF-8 characters
    group: str          # the character(s) a run of split tokens spells together ("" if none)
    data: bytes         # the token's bytes


@dataclass(frozen=True)
class TokenStats:
    pieces: tuple[TokenPiece, ...]
    groups: tuple[CharGroup, ...]   # runs of tokens that spell characters together (byte-level BPE)
    n_tokens: int
    n_characters: int
    n_bytes: int
    chars_per_token: float
    bytes_per_token: float
    tokens_per_gigabyte: float   # tokens in 1 GB of text that tokenizes like this one
    vocab_size: int

    def rows(self) -> list[dict[str, object]]:
        """One row per token: position, label, id, bytes and the characters it helps spell."""
        return [{"index": p.index, "token": p.label, "id": p.token_id, "bytes": p.hex_bytes, "spells": p.group}
                for p in self.pieces]


def token_stats(trace: Trace) -> TokenStats:
    """Per-token pieces, the characters split over several of them, and ratios for the Tokens page."""
    data = b"".join(trace.token_bytes)
    groups = character_groups(trace.token_bytes)
    spells = [""] * trace.n_tokens
    for g in groups:
        spells[g.start:g.stop] = [g.text] * (g.stop - g.start)
    pieces = tuple(
        TokenPiece(i, int(tid), label, hex_bytes(raw), is_text(raw), spells[i], raw)
        for i, (tid, label, raw) in enumerate(zip(trace.token_ids.tolist(), trace.tokens, trace.token_bytes)))
    n_chars = len(data.decode("utf-8", errors="replace"))
    n = trace.n_tokens
    return TokenStats(pieces, groups, n, n_chars, len(data), n_chars / n, len(data) / n,
                      GIGABYTE / (len(data) / n), trace.vocab_size)

