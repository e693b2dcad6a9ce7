"""Every page in Chromium with LLM_EXPLAINER_BACKEND set: the front end sends its heavy work to a real
local cluster (SmolLM2 on two CPU workers) and every page still renders (in English or Chinese, in
turn; test_pages.py walks both everywhere in-process)."""
from __future__ import annotations

import json
import os

import pytest

from explainer.text import texts
from tests.e2e.conftest import (ALERT, CHART, app_pages, assert_no_exception, has_cjk, new_page, open_app,
                                page_params, start_server, stop_server, title_text)
from tests.serving_helpers import CLUSTER_MODELS, cluster_command

pytestmark = pytest.mark.slow


def served() -> int:
    return sum(r["served"] for r in json.loads(cluster_command("status", "--json").stdout)["replicas"])


@pytest.fixture(scope="module")
def front_end(serving_cluster):
    keep = {k: os.environ.get(k) for k in ("LLM_EXPLAINER_BACKEND", "LLM_EXPLAINER_MODELS")}
    os.environ.update(LLM_EXPLAINER_BACKEND=serving_cluster, LLM_EXPLAINER_MODELS=CLUSTER_MODELS)
    try:
        srv = start_server("e2e-cluster-front-end.log")
    finally:
        for key, value in keep.items():
            os.environ.pop(key) if value is None else os.environ.update({key: value})
    srv.served_before = served()
    yield srv
    stop_server(srv)


@pytest.mark.parametrize("slug", page_params())
def test_every_page_with_its_heavy_work_on_the_cluster(browser, front_end, slug):
    for lang in [("en", "zh")[[s for _, s in app_pages()].index(slug) % 2]]:
        page = new_page(browser, viewport={"width": 1400, "height": 1800})
        try:
            open_app(page, front_end, slug, {"lang": lang, "prompt": f"A new sentence for {slug} in {lang}: the sky is"},
                     expect="any")
            page.wait_for_timeout(500)
            assert_no_exception(page)
            assert page.locator(CHART).count() >= 1 or page.locator("[data-testid='stMain'] " + ALERT).count()
            assert has_cjk(title_text(page)) == (lang == "zh")
            shown = page.locator("[data-testid='stMain'] " + ALERT).all_inner_texts()
            assert not [a for a in shown if texts("common", lang)["cluster_failed"][:12] in a], shown
        finally:
            page.context.close()


def test_the_cluster_did_the_heavy_work(front_end):
    pages = len(page_params()) - 1                               # Learning's tiny model learns in the front end
    assert served() >= front_end.served_before + pages          # every page's own prompt was traced there


@pytest.mark.parametrize("lang, words", [("zh", "秒后重试")])
def test_a_full_cluster_shows_busy_retrying_then_the_page(browser, lang, words):
    """The cluster answers 503 + Retry-After: the page says so, counting down, then draws as usual."""
    import explainer
    from explainer.serving.worker import Worker
    from tests.serving_helpers import fake_cluster

    with fake_cluster(Worker(explainer.load_model())) as (url, cluster):
        keep = os.environ.get("LLM_EXPLAINER_BACKEND")
        os.environ["LLM_EXPLAINER_BACKEND"] = url
        try:
            srv = start_server("e2e-busy-front-end.log")
        finally:
            os.environ.pop("LLM_EXPLAINER_BACKEND") if keep is None else os.environ.update(LLM_EXPLAINER_BACKEND=keep)
        page = new_page(browser)
        try:
            cluster.faults = [("busy", 6)]
            page.goto(f"{srv.url}/tokens?lang={lang}&model=smollm2-135m&prompt=" + "繁忙的一天")
            notice = page.locator("[data-testid='stMain'] " + ALERT, has_text=words)
            notice.first.wait_for(timeout=120_000)
            seen = notice.first.inner_text()
            page.wait_for_selector(CHART, timeout=120_000)
            assert_no_exception(page)
            assert "繁忙" in seen and page.locator(ALERT, has_text=words).count() == 0   # taken down once answered
        finally:
            page.context.close()
            stop_server(srv)
