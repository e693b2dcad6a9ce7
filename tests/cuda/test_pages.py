"""On an NVIDIA GPU, every page of the app with both embedded models (SmolLM2 in English, Gemma 3 in
Chinese) renders through AppTest with no exception, reading traces that live on the GPU. Skipped
(never passed) where there is no CUDA device."""
from __future__ import annotations

import pytest
import torch

from explainer import registry
from explainer.text import texts
from explainer.ui.frame import shared
from explainer.ui.tools.apptest import open_page

pytestmark = [pytest.mark.cuda, pytest.mark.integration,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("model, lang", [("smollm2-135m", "en"), ("gemma-3-270m", "zh")])
@pytest.mark.parametrize("page", registry.slugs())
def test_every_page_renders_on_the_gpu(page, model, lang):
    at = open_page(page, timeout=240, query={"model": model, "lang": lang})
    assert not at.exception, [e.value for e in at.exception]
    assert texts(page, lang)["title"] in [t.value for t in at.title], "the page's title is missing"
    ours = [tr for key, tr in shared.cached_traces() if key.model == model]
    assert page == "learning" or ours, "no trace of this model was made"
    assert all(tr.device.type == "cuda" for tr in ours), "a trace of the page is not on the GPU"
