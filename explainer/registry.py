"""The one list of the app's pages, in the order of the journey (and of the menu).

Everything that needs to know the pages reads it: ``app.py`` (the navigation), the Overview's
links under its diagram, the tour (which page shows which stage; ``explainer.analysis.tour``
plans its stops in this order), the text checks and the tests. A page's slug names everything
of it: its url path ``/<slug>``, its file ``pages/<slug>.py`` and its text files
``explainer/text/<lang>/<slug>.toml``, which hold its menu title (``menu``), the Overview's link
label (``link``, when it is linked) and its tour narration (``tour`` or ``tour_<focus>``, when it
shows a stage of the tour).

Adding a page is one line here, at the place it takes in the journey (see CONTRIBUTING.md).
No Streamlit here: plain data that the library and the app share.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """One page of the app."""

    slug: str                  # url path, page file and text files (see the module docstring)
    icon: str                  # shown in the menu and beside the Overview's link
    stage: str = ""            # the tour stage this page shows (explainer.analysis.tour); "" = none
    linked: bool = False       # the Overview links it under the journey diagram

    @property
    def file(self) -> str:
        """The page's script, relative to the repository root."""
        return f"pages/{self.slug}.py"


# In the order of the journey. The first page is the default one (it also answers at "/").
PAGES: tuple[Page, ...] = (
    Page("overview", "🗺️", stage="journey"),
    Page("tokens", "🔤", stage="tokens", linked=True),
    Page("embeddings", "📍", stage="embeddings", linked=True),
    Page("position", "🧭", stage="position", linked=True),
    Page("attention", "👀", stage="attention", linked=True),
    Page("mlp", "🧠", stage="mlp", linked=True),
    Page("layers", "🥞", stage="lens", linked=True),
    Page("next_token", "🎲", stage="prediction", linked=True),
    Page("generation", "✍️", stage="generation", linked=True),
    Page("why", "🔎", stage="attribution"),
    Page("patching", "🩹", stage="patching"),
    Page("learning", "🌱"),
)
DEFAULT = PAGES[0]


def slugs() -> tuple[str, ...]:
    """Every page's slug, in order."""
    return tuple(p.slug for p in PAGES)


def page(slug: str) -> Page:
    """The page named ``slug``."""
    for p in PAGES:
        if p.slug == slug:
            return p
    raise KeyError(f"There is no page {slug!r}; the pages are {', '.join(slugs())}.")


def tour_stages() -> tuple[str, ...]:
    """The stages the tour visits, in the journey's order."""
    return tuple(p.stage for p in PAGES if p.stage)


def page_of_stage(stage: str) -> Page:
    """The page that shows tour stage ``stage``."""
    for p in PAGES:
        if p.stage == stage:
            return p
    raise KeyError(f"No page shows the tour stage {stage!r}.")


def journey_links() -> tuple[Page, ...]:
    """The pages the Overview links under its diagram, in order."""
    return tuple(p for p in PAGES if p.linked)
