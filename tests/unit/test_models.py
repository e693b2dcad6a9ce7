"""Loading: the random GPT-2, folders, and a clear refusal for every bad source."""
from __future__ import annotations

import json
import time

import pytest
import torch

import explainer
from explainer.models import ModelLoadError, pick_device


@pytest.fixture(scope="module")
def saved_gpt2(tmp_path_factory, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(1)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2))
    folder = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model


def test_random_gpt2_is_untrained_and_described(tokenizer):
    m = explainer.load_model("random-gpt2")
    assert (m.name, m.arch.family, m.n_layers, m.n_heads, m.d_model) == ("random-gpt2", "gpt2", 4, 4, 128)
    assert m.vocab_size == len(tokenizer) == 49152 and m.context_length == 1024
    assert m.device == torch.device("cpu") and not m.hf_model.training
    assert all(not p.requires_grad for p in m.hf_model.parameters())
    again = explainer.load_model("random-gpt2")              # same seed: same weights
    assert torch.equal(m.embedding_matrix(), again.embedding_matrix())


def test_local_folder_loads_with_the_same_outputs(saved_gpt2):
    folder, original = saved_gpt2
    m = explainer.load_model(str(folder))
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(m.hf_model(ids).logits, original.eval()(ids).logits, atol=1e-5)
    assert m.hf_model.config._attn_implementation == "sdpa"      # fused attention; weights come on demand


def test_pickle_only_is_refused_unless_allowed(tmp_path, saved_gpt2, tokenizer):
    folder, model = saved_gpt2
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")     # a pickle checkpoint
    tokenizer.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.safetensors"))
    with pytest.raises(ModelLoadError, match="pickle"):
        explainer.load_model(str(tmp_path))
    assert explainer.load_model(str(tmp_path), allow_pickle=True).n_layers == 2


def _expect_refusal(name: str, match: str) -> None:
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match=match):
        explainer.load_model(name)
    assert time.monotonic() - start < 30          # never a hang


def test_empty_folder(tmp_path):
    _expect_refusal(str(tmp_path), "no config.json")


def test_config_without_weights(tmp_path, saved_gpt2):
    (tmp_path / "config.json").write_text((saved_gpt2[0] / "config.json").read_text())
    _expect_refusal(str(tmp_path), "no weights")


def test_corrupt_weights(tmp_path, saved_gpt2):
    for f in saved_gpt2[0].iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"this is not a safetensors file" * 10)
    _expect_refusal(str(tmp_path), "could not be loaded")


def test_not_a_causal_lm(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit", "hidden_size": 32}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    _expect_refusal(str(tmp_path), "not a causal")


def test_unsupported_architecture_names_what_is_missing(tmp_path):
    from transformers import OPTConfig
    OPTConfig(hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2,
              vocab_size=100, word_embed_proj_dim=16).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    _expect_refusal(str(tmp_path), "'opt' is not supported by the tracer yet.*Supported types")


@pytest.mark.parametrize("name", ["no/such-model-anywhere", "gpt-nonexistent-xyz"])
def test_unknown_hub_id_offline(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _expect_refusal(name, "not in the local Hugging Face cache")


@pytest.mark.parametrize("name", ["bad name with spaces!", "a/b/c/d?"])
def test_nonsense_names(name):
    _expect_refusal(name, "Unknown model name|is not a folder")


def test_missing_folder():
    _expect_refusal("/definitely/not/here", "not a folder")


def test_wrong_type():
    with pytest.raises(TypeError):
        explainer.load_model(123)


def test_device_choice():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert pick_device("auto").type == expected


def test_trace_cache_computes_once_under_concurrency():
    import threading
    from explainer.cache import ByteLRU

    calls = []
    cache: ByteLRU[list] = ByteLRU(max_bytes=100, size_of=len)

    def compute():
        calls.append(1)
        time.sleep(0.05)
        return [0] * 10

    threads = [threading.Thread(target=cache.get_or_compute, args=("k", compute)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(calls) == 1 and cache.hits == 7
    for i in range(20):                                   # the byte budget evicts the oldest
        cache.get_or_compute(i, lambda: [0] * 10)
    assert cache.nbytes() <= 100 and "k" not in cache._items
