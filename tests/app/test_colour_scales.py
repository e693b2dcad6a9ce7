"""The browser draws what the tests check: every page's figures as sent (built unchecked, as the app
builds them) carry exactly the colour scales of the same figures checked by Plotly for Python.

A scale given by name would differ: Plotly for Python turns "Blues" into its own colours (light at
0), while the browser's Plotly.js reads the name with its own table (dark at 0)."""
from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from explainer import registry
from explainer.figures import theme
from explainer.ui.frame.params import compare_to_url
from tests.app.conftest import open_page

# every page as it opens, and the sections that only a value in the URL shows
VIEWS = [pytest.param(slug, {}, id=slug) for slug in registry.slugs()] + [
    pytest.param(slug, {"compare": compare_to_url("untrained")}, id=f"{slug}-compare")
    for slug in ("attention", "layers", "next_token")] + [pytest.param("why", {"mlp_off": "0"}, id="why-switched-off")]


def scales(node: Any, path: str = "") -> dict[str, Any]:
    """Every colour scale in a figure's JSON, by its path."""
    found: dict[str, Any] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key == "colorscale" or (path.endswith("layout.colorscale") and key in ("sequential", "diverging",
                                                                                     "sequentialminus")):
                found[here] = value
            else:
                found.update(scales(value, here))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.update(scales(value, f"{path}[{i}]"))
    return found


def differences(spec: dict) -> dict[str, tuple[Any, Any]]:
    """Colour scales that Plotly's checks change: path → (as sent, as checked)."""
    sent = scales(spec)
    checked = scales(json.loads(pio.to_json(go.Figure(spec), validate=True)))
    return {path: (sent.get(path), checked.get(path)) for path in sent.keys() | checked.keys()
            if sent.get(path) != checked.get(path)}


def test_a_scale_by_name_is_caught(monkeypatch):
    monkeypatch.setattr(theme, "VALIDATE", False)
    named = theme.figure([dict(type="heatmap", z=[[0, 1]], colorscale="Blues")], {})
    spec = json.loads(pio.to_json(named, validate=False))
    (path, (sent, checked)), = differences(spec).items()
    assert path == "data[0].colorscale" and sent == "Blues" and checked[0] == [0.0, "rgb(247,251,255)"]
    explicit = theme.figure([dict(type="heatmap", z=[[0, 1]], colorscale=theme.SEQUENTIAL)], {})
    assert not differences(json.loads(pio.to_json(explicit, validate=False)))


@pytest.mark.parametrize("slug, values", VIEWS)
def test_every_page_sends_the_colour_scales_plotly_checks(slug, values, monkeypatch):
    monkeypatch.setattr(theme, "VALIDATE", False)         # as the app builds them: unchecked
    at = open_page(slug, **values)
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert specs, f"{slug} drew no chart"
    for spec in specs:
        assert not differences(spec), (slug, spec.get("layout", {}).get("title"), differences(spec))
    if slug == "attention":                                # high weights dark, 0 nearly white
        heat = next(d for s in specs for d in s["data"] if d.get("colorscale") == theme.SEQUENTIAL)
        assert heat["colorscale"][0][1] == "#f7fbff" and heat["colorscale"][-1][1] == "#08306b"
