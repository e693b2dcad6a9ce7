"""The tracer on tiny random GPT-2 and Llama models: shapes, exactness, safety, bounds."""
from __future__ import annotations

import threading

import pytest
import torch

import explainer
from explainer import tracing
from explainer.trace import Trace

TEXT = "The cat sat on the mat because the cat was tired."


def plain_forward(model, ids):
    with torch.no_grad():
        return model.hf_model(input_ids=ids[None], output_attentions=True, use_cache=False)


def test_shapes(tiny_model):
    m = tiny_model
    t = explainer.trace(m, TEXT)
    T = t.n_tokens
    assert t.token_ids.shape == (T,) and len(t.tokens) == T
    assert t.embeddings.shape == (T, m.d_model)
    assert t.residual.shape == (m.n_layers + 1, T, m.d_model)
    assert t.attentions.shape == (m.n_layers, m.n_heads, T, T)
    assert t.attn_out.shape == t.mlp_out.shape == (m.n_layers, T, m.d_model)
    assert t.mlp_activations.shape == (m.n_layers, T, m.d_mlp)
    assert t.logits.shape == (T, m.vocab_size)
    assert t.truncated is False
    if m.arch.family == "gpt2":
        assert t.positions.shape == (T, m.d_model) and t.rotary is None
    else:
        assert t.positions is None and t.rotary.inv_freq.shape == (m.head_dim // 2,)


def test_token_ids_are_what_the_tokenizer_gives(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    assert t.token_ids.tolist() == tiny_model.tokenizer(TEXT)["input_ids"]


def test_logits_and_attentions_equal_plain_hf_forward(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    ref = plain_forward(tiny_model, t.token_ids)
    assert torch.equal(t.logits, ref.logits[0])
    for layer in range(tiny_model.n_layers):
        assert torch.equal(t.attention(layer), ref.attentions[layer][0])


def test_causal_mask_and_rows_sum_to_one(tiny_model):
    att = explainer.trace(tiny_model, TEXT).attentions
    T = att.shape[-1]
    upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    assert torch.all(att[..., upper] == 0)
    assert torch.allclose(att.sum(-1), torch.ones(att.shape[:-1]), atol=1e-5)


def test_residual_bookkeeping(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    r = t.residual
    for i in range(tiny_model.n_layers):
        assert torch.allclose(r[i + 1], r[i] + t.attn_out[i] + t.mlp_out[i], atol=1e-5)
    if t.positions is not None:                         # GPT-2: block 0 reads token + position
        assert torch.allclose(r[0], t.embeddings + t.positions, atol=1e-6)
    else:
        assert torch.allclose(r[0], t.embeddings)


def test_final_residual_through_norm_and_head_gives_logits(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    with torch.no_grad():
        norm = tiny_model.arch.final_norm(tiny_model.hf_model)
        logits = tiny_model.hf_model.get_output_embeddings()(norm(t.residual[-1]))
    assert torch.allclose(logits, t.logits, atol=1e-5)


def test_mlp_activations_feed_the_down_projection(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    down = tiny_model.arch.mlp_down(tiny_model.arch.blocks(tiny_model.hf_model)[1])
    with torch.no_grad():
        assert torch.allclose(down(t.mlp_activations[1]), t.mlp_out[1], atol=1e-5)


def _hook_count(model) -> int:
    return sum(len(mod._forward_hooks) + len(mod._forward_pre_hooks) for mod in model.hf_model.modules())


def test_model_is_left_unmodified(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.hf_model.state_dict().items()}
    hooks = _hook_count(tiny_model)      # HF may keep its own output-recording hooks; we add none
    explainer.trace(tiny_model, TEXT, ablate_heads=[(0, 1)], ablate_mlps=[1])
    assert _hook_count(tiny_model) == hooks
    after = tiny_model.hf_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_hooks_removed_when_forward_raises(tiny_model, monkeypatch):
    block = tiny_model.arch.blocks(tiny_model.hf_model)[1]
    mlp = tiny_model.arch.mlp(block)

    def boom(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(mlp, "forward", boom)
    hooks = _hook_count(tiny_model)
    with pytest.raises(RuntimeError, match="boom"):
        explainer.trace(tiny_model, TEXT)
    assert _hook_count(tiny_model) == hooks
    monkeypatch.undo()
    explainer.trace(tiny_model, TEXT)                    # still usable afterwards


def test_threads_give_the_same_results_as_one_at_a_time(tiny_model):
    prompts = [f"Prompt number {i} says {'la ' * i}and ends." for i in range(10)]
    alone = {p: explainer.trace(tiny_model, p) for p in prompts}
    results: dict[str, Trace] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(prompts))

    def work(p: str) -> None:
        try:
            barrier.wait()
            results[p] = explainer.trace(tiny_model, p)
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(p,)) for p in prompts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for p in prompts:
        assert torch.equal(results[p].logits, alone[p].logits)
        assert torch.equal(results[p].attentions, alone[p].attentions)
        assert torch.equal(results[p].residual, alone[p].residual)


@pytest.mark.parametrize("bad", ["", "   ", "\n\t  "])
def test_empty_text_is_refused(tiny_gpt2, bad):
    with pytest.raises(ValueError, match="empty"):
        explainer.trace(tiny_gpt2, bad)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["list"]])
def test_non_text_is_refused(tiny_gpt2, bad):
    with pytest.raises(TypeError):
        explainer.trace(tiny_gpt2, bad)


def test_long_text_is_truncated_and_bounded(tiny_gpt2):
    article = "Words upon words in a very long article. " * 3000      # ~120,000 characters
    t = explainer.trace(tiny_gpt2, article, max_tokens=50)
    assert t.truncated and t.n_tokens == 50
    assert t.token_ids.tolist() == tiny_gpt2.tokenizer(article[:4096])["input_ids"][:50]
    exact = explainer.trace(tiny_gpt2, "one two three", max_tokens=3)
    assert not exact.truncated and exact.n_tokens == 3


def test_max_tokens_never_exceeds_the_context(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, "x " * 500, max_tokens=10_000)
    assert t.n_tokens == tiny_gpt2.context_length == 128


def test_compact_precision_past_the_budget(tiny_llama, monkeypatch):
    exact = explainer.trace(tiny_llama, TEXT)
    monkeypatch.setattr(tracing, "FULL_PRECISION_BUDGET", 1)
    compact = explainer.trace(tiny_llama, TEXT)
    assert exact.precision == "float32" and compact.precision == "float16"
    assert compact.nbytes() < exact.nbytes()
    assert torch.allclose(compact.attentions, exact.attentions, atol=1e-3)
    assert torch.allclose(compact.residual, exact.residual, atol=1e-2, rtol=1e-3)
    assert torch.equal(compact.next_token_logits, exact.next_token_logits)   # the prediction stays exact


def test_byte_pieces_are_legible(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, "猫 and 🐱 and 👩‍👩‍👧")
    assert all("\ufffd" not in tok for tok in t.tokens)
    assert b"".join(t.token_bytes).decode("utf-8") == "猫 and 🐱 and 👩‍👩‍👧"
    assert any(tok.startswith("<0x") for tok in t.tokens)


def test_control_characters_are_visible(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, "a\nb\x00c")
    joined = "".join(t.tokens)
    assert "\n" not in joined and "\x00" not in joined and "↵" in joined and "<0x00>" in joined


def test_ablating_a_head_changes_the_output_and_only_for_that_pass(tiny_model):
    base = explainer.trace(tiny_model, TEXT)
    off = explainer.trace(tiny_model, TEXT, ablate_heads=[(1, 0)])
    assert off.ablated_heads == frozenset({(1, 0)})
    assert not torch.equal(off.logits, base.logits)
    assert torch.equal(off.residual[1], base.residual[1])              # layer 0 is untouched
    again = explainer.trace(tiny_model, TEXT)
    assert torch.equal(again.logits, base.logits)                        # restored exactly


def test_ablating_an_mlp_zeroes_its_output(tiny_model):
    off = explainer.trace(tiny_model, TEXT, ablate_mlps=[0])
    assert torch.count_nonzero(off.mlp_out[0]) == 0
    r = off.residual
    assert torch.allclose(r[1], r[0] + off.attn_out[0], atol=1e-6)


@pytest.mark.parametrize("heads,mlps", [([(9, 0)], []), ([(0, 99)], []), ([], [5])])
def test_bad_ablation_is_refused(tiny_gpt2, heads, mlps):
    with pytest.raises(ValueError, match="There is no"):
        explainer.trace(tiny_gpt2, TEXT, ablate_heads=heads, ablate_mlps=mlps)


def test_trace_accessors_return_copies(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, TEXT)
    t.residual.zero_()
    t.attention(0).zero_()
    t.logits.zero_()
    assert t.residual.abs().sum() > 0 and t.attention(0).sum() > 0 and t.logits.abs().sum() > 0


def test_save_and_load_round_trip(tiny_model, tmp_path):
    t = explainer.trace(tiny_model, "猫 sat " + TEXT, ablate_heads=[(0, 1)])
    loaded = Trace.load(t.save(tmp_path / "trace.npz"))
    assert loaded.tokens == t.tokens and loaded.token_bytes == t.token_bytes and loaded.text == t.text
    assert loaded.ablated_heads == t.ablated_heads and loaded.precision == t.precision
    for name in ("token_ids", "embeddings", "residual", "attentions", "attn_out", "mlp_out",
                 "mlp_activations", "logits", "next_token_logits"):
        assert torch.equal(getattr(loaded, name), getattr(t, name)), name
    assert (loaded.positions is None) == (t.positions is None)
    assert loaded.metadata() == t.metadata()
