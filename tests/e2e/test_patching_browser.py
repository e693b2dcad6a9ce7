"""Where is the answer decided? in a real browser: a click on a map's cell runs that cell again, and
the link keeps it."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import CHART, assert_no_exception, open_app, rerun

pytestmark = pytest.mark.slow

CELL_XY = """([i, layer, index]) => {
  const gd = document.querySelectorAll("[data-testid='stPlotlyChart'] .js-plotly-plot")[i];
  const L = gd._fullLayout, box = gd.getBoundingClientRect();
  return [box.x + L._size.l + L.xaxis.l2p(index), box.y + L._size.t + L.yaxis.l2p(layer)];
}"""


def _titles(page) -> list[str]:
    return page.locator(f"{CHART} .gtitle").all_inner_texts()


def test_clicking_a_cell_runs_it_again_and_the_link_keeps_it(page, server):
    open_app(page, server, "patching")
    assert any("layer 24, position 11" in t for t in _titles(page)), _titles(page)   # the strongest cell at first
    x, y = page.evaluate(CELL_XY, [0, 3, 10])                               # the residual map: layer 3, ␣Germany
    rerun(page, lambda: page.mouse.click(x, y))
    page.wait_for_function("() => location.search.includes('cell=3.10')")
    assert any("layer 3, position 10 (␣Germany)" in t for t in _titles(page)), _titles(page)
    assert_no_exception(page)
    page.reload()                                                          # the link alone rebuilds the view
    page.wait_for_selector(f"{CHART} .gtitle")
    page.wait_for_function("() => [...document.querySelectorAll('.gtitle')].some("
                           "t => t.textContent.includes('layer 3, position 10'))", timeout=120_000)
    assert_no_exception(page)
