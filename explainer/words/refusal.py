"""A request the memory budget refused, in words: what it needed, what is allowed and, for a trace,
how many tokens would fit."""
from __future__ import annotations

from explainer.budget import TooLarge
from explainer.numbers import human_bytes
from explainer.view import View


def too_large(err: TooLarge, view: View) -> str:
    """The refusal in the page's language. Reads too_large ({error}) and, for a trace that says how many
    tokens fit, too_large_tokens ({n}, {need}, {limit}, {fits}); otherwise the library's own message."""
    c = view.common
    said = err if err.fits is None else c["too_large_tokens"].format(
        n=f"{err.tokens:,}", need=human_bytes(err.need), limit=human_bytes(err.limit), fits=f"{err.fits:,}")
    return c["too_large"].format(error=said)
