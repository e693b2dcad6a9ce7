"""The one page registry: every page's file, text keys and tour stage follow from one line."""
from __future__ import annotations

from pathlib import Path

import pytest

from explainer import registry
from explainer.analysis.tour import STAGES
from explainer.text import LANGUAGES, TEXT_DIR, texts

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_file_is_registered_once_and_every_entry_has_its_file():
    slugs = registry.slugs()
    assert len(set(slugs)) == len(slugs) and registry.DEFAULT.slug == "overview"
    assert sorted(p.stem for p in (ROOT / "pages").glob("*.py")) == sorted(slugs)
    for page in registry.PAGES:
        assert (ROOT / page.file).is_file() and registry.page(page.slug) is page
    with pytest.raises(KeyError, match="no page 'nowhere'"):
        registry.page("nowhere")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_brings_its_own_words(lang):
    """Title and menu title; the Overview's link label when linked; narration when on the tour."""
    for page in registry.PAGES:
        t = texts(page.slug, lang)
        assert t["title"] and t["menu"], page.slug
        assert ("link" in t) == page.linked, page.slug
        narrations = [k for k in t if k == "tour" or k.startswith("tour_")]
        assert bool(narrations) == bool(page.stage), (page.slug, narrations)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_page_list_is_kept_in_the_shared_text_files(lang):
    common, tour, overview = texts("common", lang), texts("tour", lang), texts("overview", lang)
    assert not [k for k in common if k.startswith("page_")]
    assert not [k for k in overview if k.startswith("link_")]
    assert set(tour) == {"step", "next", "back", "end", "resume"}          # the tour's own buttons only
    assert (TEXT_DIR / lang / "tour.toml").is_file()


def test_the_tour_visits_the_registrys_stages_in_its_order():
    assert STAGES == registry.tour_stages()
    assert [registry.page_of_stage(s).slug for s in STAGES] == [p.slug for p in registry.PAGES if p.stage]
    assert registry.page_of_stage("lens").slug == "layers" and registry.page_of_stage("attribution").slug == "why"
    assert [p.slug for p in registry.journey_links()][:2] == ["tokens", "embeddings"]


def test_nothing_else_keeps_a_page_list():
    """Page files are named only through the registry (no "pages/<slug>.py" written out elsewhere)."""
    offenders = []
    for folder in (ROOT / "explainer", ROOT / "pages"):
        for path in folder.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name != "registry.py" and "pages/" in text.replace("pages/ ", "") and '"pages/' in text:
                offenders.append(str(path.relative_to(ROOT)))
    assert "st.navigation" in (ROOT / "app.py").read_text() and "PAGES" in (ROOT / "app.py").read_text()
    assert not offenders, offenders
