"""The View: everything a figure needs besides its numbers, built once per page.

Every figure builder is ``build(result, view)``: the result holds the numbers (and the token
labels and selection it shows), the View the words and how the page is shown. Pages get
theirs from ``explainer.ui.frame.page``; tests and notebooks make one with :meth:`View.of`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from explainer.text import texts


@dataclass(frozen=True)
class View:
    """The words and the look of one page."""

    t: Mapping[str, str]            # this page's texts (explainer/text/<lang>/<page>.toml)
    common: Mapping[str, str]       # texts every page shares (common.toml)
    lang: str = "en"
    presenter: bool = False         # large type, high contrast, fewer explanations
    image_format: str = "png"       # what a chart's camera icon saves: "png" or "svg"

    @classmethod
    def of(cls, page: str, lang: str = "en", presenter: bool = False, image_format: str = "png") -> "View":
        """The View of ``page`` in ``lang``."""
        return cls(texts(page, lang), texts("common", lang), lang, presenter, image_format)

    def using(self, page: str, **extra: str) -> "View":
        """The same view with another text file's words (plus ``extra`` entries), e.g. compare's."""
        return replace(self, t={**texts(page, self.lang), **extra})

    def texts_of(self, page: str) -> Mapping[str, str]:
        """Another page's texts in this view's language (its menu title, its link label)."""
        return texts(page, self.lang)

    def adding(self, **extra: str) -> "View":
        """This page's texts with ``extra`` entries added or replaced (words chosen at run time)."""
        return replace(self, t={**self.t, **extra})
