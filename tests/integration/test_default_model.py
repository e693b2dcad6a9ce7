"""The real embedded SmolLM2-135M: facts it knows, legible Chinese, and the command line."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import explainer
from tests.reference import eager_forward, plain_logits, relative
from explainer.analysis.prediction import next_token_distribution

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_default_model_shape(default_model):
    m = default_model
    assert (m.name, m.arch.family, m.n_layers, m.n_heads, m.n_kv_heads, m.d_model, m.vocab_size) == \
        ("smollm2-135m", "llama", 30, 9, 3, 576, 49152)
    assert m.n_parameters() == 134_515_008


def test_paris_is_in_the_top_three(default_model):
    t = explainer.trace(default_model, "The capital of France is")
    dist = next_token_distribution(t.next_token_logits, show=3)
    top = [default_model.tokenizer.decode([i]) for i in dist.top_ids]
    assert " Paris" in top
    assert dist.top_probs[top.index(" Paris")] > 0.5


def test_real_model_parity_with_plain_forward(default_model):
    t = explainer.trace(default_model, "The capital of Germany is Berlin, and the capital of Italy is")
    assert relative(t.logits, plain_logits(default_model, t.token_ids)) <= 1e-4      # sdpa, as loaded
    ref = eager_forward(default_model, t.token_ids)
    for i in (0, 14, 29):
        torch.testing.assert_close(t.attention(i), ref.attentions[i][0], atol=1e-5, rtol=0)
        assert t.block_check(i) <= 1e-3 * float(t.stream(i + 1).abs().max())


def test_chinese_tokens_are_legible(default_model):
    t = explainer.trace(default_model, "法国的首都是巴黎。猫和狗 🐱")
    assert all("\ufffd" not in tok for tok in t.tokens)
    assert b"".join(t.token_bytes).decode("utf-8") == "法国的首都是巴黎。猫和狗 🐱"


def test_cached_load_is_fast():
    start = time.monotonic()
    explainer.load_model()
    assert time.monotonic() - start < 20       # generous; the benchmark reports the real figure


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explainer", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_predict_json():
    out = _cli("predict", "The capital of France is", "--top", "3", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 3 and {"token", "probability"} <= set(rows[0])
    assert rows[0]["token"] == " Paris"
    assert sum(r["probability"] for r in rows) <= 1.0


def test_cli_trace_shapes():
    out = _cli("trace", "Hello world", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    T = len(info["tokens"])
    assert info["shapes"]["attentions"] == [30, 9, T, T]
    assert info["shapes"]["residual"] == [31, T, 576]
    assert info["shapes"]["positions"] is None


def test_cli_reports_bad_input_clearly():
    out = _cli("predict", "   ")
    assert out.returncode == 2 and "empty" in out.stderr and "Traceback" not in out.stderr
    out = _cli("predict", "hi", "--model", "/no/such/folder")
    assert out.returncode == 2 and "not a folder" in out.stderr
