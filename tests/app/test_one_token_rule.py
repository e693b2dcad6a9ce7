"""One token, drawn the same way on Tokens, Embeddings, Attention and Next token (the real model)."""
import html
import json
import re

import pytest

import explainer
from explainer import tokens
from explainer.analysis.prediction import next_token
from tests.app.conftest import open_page

PROMPT = "The capital of France is Paris. The capital of France is"      # " Paris" is read and predicted


def _plotly_text(at) -> list[str]:
    """Every category and tick label of every chart on the page."""
    found = []
    for chart in at.get("plotly_chart"):
        for trace in json.loads(chart.proto.spec)["data"]:
            for axis in ("x", "y"):
                values = trace.get(axis)
                if isinstance(values, list):
                    found += [v for v in values if isinstance(v, str)]
    return found


@pytest.mark.integration
def test_a_token_with_a_space_looks_the_same_on_four_pages(default_model):
    shown, plotted = tokens.shown(" Paris"), tokens.for_plotly(" Paris")
    chips = open_page("tokens", prompt=PROMPT)
    seen = html.unescape(re.sub(r"<[^>]+>", "", "".join(h.proto.body for h in chips.get("html"))))
    assert shown in seen                                                    # the chip reads "␣Paris"
    for page in ("embeddings", "attention", "next_token"):
        at = open_page(page, prompt=PROMPT)
        assert not at.exception
        labels = _plotly_text(at)
        assert any(lab.endswith(": " + plotted) or lab == plotted for lab in labels), (page, labels[:20])
        assert not any(lab.endswith(": Paris") or lab.endswith(" Paris") for lab in labels), page
    top = next_token(default_model, explainer.trace(default_model, PROMPT, 256)).top_labels[0]
    assert at.metric[0].value == tokens.shown(top) and top.startswith(" ")  # the top guess, by the same rule
