"""Where is the answer decided? in a real browser: a click on a map's cell runs that cell again, and
the link keeps it."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import CHART, LOAD_TIMEOUT_MS, assert_no_exception, rerun, url_for, wait_idle

pytestmark = pytest.mark.slow

CELL_XY = """([i, layer, index]) => {
  const gd = document.querySelectorAll("[data-testid='stPlotlyChart'] .js-plotly-plot")[i];
  const L = gd._fullLayout, box = gd.getBoundingClientRect();
  return [box.x + L._size.l + L.xaxis.l2p(index), box.y + L._size.t + L.yaxis.l2p(layer)];
}"""


def _titles(page) -> list[str]:
    return page.locator(f"{CHART} .gtitle").all_text_contents()


def _five_charts(page) -> None:
    """The four maps and the cell run again (the first open computes every cell: allow for a busy machine)."""
    page.wait_for_function(f"() => document.querySelectorAll(\"{CHART}\").length >= 5", timeout=LOAD_TIMEOUT_MS)
    wait_idle(page)
    assert_no_exception(page)


def test_clicking_a_cell_runs_it_again_and_the_link_keeps_it(page, server):
    page.goto(url_for(server, "patching"))
    _five_charts(page)
    assert any("layer 24, position 11" in t for t in _titles(page)), _titles(page)   # the strongest cell at first
    x, y = page.evaluate(CELL_XY, [0, 3, 10])                               # the residual map: layer 3, ␣Germany
    rerun(page, lambda: page.mouse.click(x, y))
    page.wait_for_function("() => location.search.includes('cell=3.10') && [...document.querySelectorAll("
                           "'.gtitle')].some(t => t.textContent.includes('layer 3, position 10'))")
    assert any("layer 3, position 10 (␣Germany)" in t for t in _titles(page)), _titles(page)
    assert_no_exception(page)
    page.reload()                                                          # the link alone rebuilds the view
    _five_charts(page)
    assert any("layer 3, position 10 (␣Germany)" in t for t in _titles(page)), _titles(page)
