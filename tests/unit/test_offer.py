"""Serving safely: the models a server offers, and every model sized before a weight is read."""
from __future__ import annotations

import pytest

import explainer
from explainer import models, offer
from explainer.models import random_gpt2
from tests.serving_helpers import big_model_folder


@pytest.fixture
def nothing_read(monkeypatch):
    """Fail the test if any model weights (or the hub) would be touched."""
    def refuse(*args, **kwargs):
        raise AssertionError("weights were read")
    for name in ("_from_embedded", "_from_hub", "_load_pretrained", "embedded_dir"):
        monkeypatch.setattr(models, name, refuse)


def test_with_a_list_only_those_models_load(monkeypatch, nothing_read, tmp_path):
    monkeypatch.setenv(offer.MODELS_ENV, " smollm2-135m , gemma-3-270m,")
    assert offer.offered() == ("smollm2-135m", "gemma-3-270m")
    for name in ("gpt2", "HuggingFaceTB/SmolLM2-1.7B", str(tmp_path), "/etc", "~/.ssh", "../../x"):
        with pytest.raises(offer.ModelNotOffered, match="offers only smollm2-135m, gemma-3-270m") as err:
            explainer.load_model(name)
        assert err.value.offered == ("smollm2-135m", "gemma-3-270m")
    offer.admit("random-gpt2")                                      # the untrained model: always there
    monkeypatch.setenv(offer.MODELS_ENV, "gemma-3-270m")
    with pytest.raises(offer.ModelNotOffered):
        explainer.load_model(None)                                  # the default is not offered either


def test_unset_any_name_is_admitted():
    assert offer.offered() is None and offer.is_offered("anything/at-all")


def test_a_model_too_large_is_refused_from_its_config_before_any_weight(monkeypatch, tmp_path):
    folder = big_model_folder(tmp_path / "big")
    monkeypatch.setenv("LLM_EXPLAINER_MODEL_GB", "8")
    with pytest.raises(offer.ModelTooLarge, match=r"about 25\.1 GB for its weights, more than the 8\.0 GB") as err:
        explainer.load_model(str(folder))
    assert err.value.need == 4 * 6_738_415_616                      # Llama 2 7B's parameters, float32


def test_embedded_models_are_sized_by_their_known_shapes(monkeypatch, nothing_read):
    monkeypatch.setenv("LLM_EXPLAINER_MODEL_GB", "0.75")
    with pytest.raises(offer.ModelTooLarge, match="gemma-3-270m"):
        explainer.load_model("gemma-3-270m")                         # 1.07 GB in float32
    offer.admit("smollm2-135m")                                      # 0.54 GB fits


def test_known_parameter_counts_are_the_real_ones():
    model = random_gpt2()
    assert offer.KNOWN_PARAMETERS["random-gpt2"] == sum(p.numel() for p in model.parameters())
    assert offer.parameters_of(model.config) == offer.KNOWN_PARAMETERS["random-gpt2"]
