"""Export: the whole trace downloads as .npz and loads back equal; data downloads carry the numbers."""
import csv
import io

import pytest
import torch

import explainer
from explainer.trace import Trace
from explainer.ui.frame.shared import cached_traces
from tests.app.conftest import open_page

PROMPT = "The capital of France is Paris. The capital of Germany is"


def _download(at, key):
    button = at.get("download_button")
    found = [b for b in button if b.proto.id.endswith(key) or key in b.proto.id]
    assert found, [b.proto.id for b in button]
    return found[0]


@pytest.mark.integration
def test_trace_download_loads_back_equal(default_model):
    at = open_page("tokens")
    assert not at.exception
    _download(at, "download_trace")
    cached = next(v for k, v in cached_traces()
                  if k.model == default_model.name and k.text == PROMPT and not k.ablate_heads and not k.ablate_mlps)
    loaded = Trace.load(io.BytesIO(cached.to_bytes()))
    fresh = explainer.trace(default_model, PROMPT, 256)
    for name in ("token_ids", "residual", "attentions", "logits", "mlp_activations"):
        assert torch.equal(getattr(loaded, name), getattr(fresh, name)), name
    assert loaded.tokens == fresh.tokens


def test_chart_data_download_has_every_token():
    from explainer.analysis.tokens import token_stats
    from explainer.ui.frame.widgets import export

    at = open_page("tokens")
    button = _download(at, "tokens_bytes")
    assert button.proto.label == "⬇ Data (CSV)"
    trace = next(v for k, v in cached_traces() if k.text == PROMPT and not k.ablate_heads and not k.ablate_mlps)
    rows = list(csv.DictReader(io.StringIO(export(token_stats(trace).rows()).decode("utf-8"))))
    assert [r["token"] for r in rows] == list(trace.tokens)                  # every token, as its text
    assert [int(r["id"]) for r in rows] == trace.token_ids.tolist()


def test_svg_format_switch_changes_the_chart_config():
    at = open_page("tokens", img="svg")
    assert not at.exception
    assert '"format": "svg"' in at.get("plotly_chart")[0].proto.config.replace(":", ": ").replace(":  ", ": ")
