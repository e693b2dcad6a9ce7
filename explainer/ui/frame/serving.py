"""What a shared server adds to the page frame: the busy notice, refused models, cluster errors.

With ``LLM_EXPLAINER_BACKEND`` set, a page's heavy work goes to the cluster; while the cluster is
full the top of the page says "busy — retrying in N s", counting down, until the answer comes
(:func:`listen`). Unset, nothing here draws anything and no HTTP code is imported.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import streamlit as st

from explainer.numbers import human_bytes
from explainer.offer import ModelNotOffered, ModelTooLarge
from explainer.serving import ServingError, remote
from explainer.text import texts


def listen(common: Mapping[str, str]) -> None:
    """Give this page run a place at its top for the busy notice (with a backend only)."""
    if remote.backend() is None:
        return
    from explainer.serving import client

    slot = st.empty()

    def heard(seconds: int) -> None:
        if seconds > 0:
            slot.warning(common["busy"].format(n=seconds), icon="⏳")
        else:
            slot.empty()
    client.listen(heard)


def refused(err: Exception, common: Mapping[str, str], other: str) -> str | None:
    """A model refusal in the page's language (None when ``err`` is another kind of failure)."""
    if isinstance(err, ModelNotOffered):
        return common["model_not_offered"].format(name=err.name, offered=", ".join(err.offered), other=other)
    if isinstance(err, ModelTooLarge):
        return common["model_too_large"].format(name=err.name, need=human_bytes(err.need), limit=human_bytes(err.limit))
    return None


@contextlib.contextmanager
def said_when_unanswered(lang: str) -> Iterator[None]:
    """Around a page: if the cluster cannot answer (down, or full for minutes), say so in the page's
    language instead of showing an error's traceback. The user's settings stay as they were."""
    try:
        yield
    except ServingError as err:
        st.warning(texts("common", lang)["cluster_failed"].format(error=err))
