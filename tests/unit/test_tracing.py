"""The tracer on tiny random GPT-2, Llama, Qwen3 and Gemma 3 models: exactness against a plain
Hugging Face forward (sdpa for logits, eager for attention weights), bookkeeping, safety, bounds (the text cut into tokens: test_tokenize.py)."""
from __future__ import annotations

import math
import threading

import pytest
import torch

import explainer
from explainer import tracing
from explainer.budget import TooLarge
from explainer.trace import Trace
from tests.reference import eager_forward, plain_logits, relative

TEXT = "The cat sat on the mat because the cat was tired, and then the dog sat on the cat."


def test_shapes(tiny_model):
    m = tiny_model
    t = explainer.trace(m, TEXT)
    T = t.n_tokens
    assert t.token_ids.shape == (T,) and len(t.tokens) == T
    assert t.embeddings.shape == (T, m.d_model)
    assert t.residual.shape == (m.n_layers + 1, T, m.d_model)
    assert t.attentions.shape == (m.n_layers, m.n_heads, T, T)
    assert t.attention(0, rows=[3, 5]).shape == (m.n_heads, 2, T)
    assert t.attention(0, rows=range(4), heads=[1]).shape == (1, 4, T)
    assert t.attn_out.shape == t.mlp_out.shape == (m.n_layers, T, m.d_model)
    assert t.mlp_activations.shape == (m.n_layers, T, m.d_mlp)
    assert t.logits.shape == (T, m.vocab_size) and t.logits_at([0, -1]).shape == (2, m.vocab_size)
    assert t.truncated is False and t.precision == "float32"
    if m.arch.family == "gpt2":
        assert t.positions.shape == (T, m.d_model) and t.rotary is None
    else:
        assert t.positions is None and t.rotary.inv_freq.shape == (m.head_dim // 2,)


def test_token_ids_are_what_the_tokenizer_gives(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    assert t.token_ids.tolist() == tiny_model.tokenizer(TEXT)["input_ids"]


def test_logits_equal_a_plain_hf_forward(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    ref = plain_logits(tiny_model, t.token_ids)
    assert relative(t.logits, ref) <= 1e-4
    torch.testing.assert_close(t.next_token_logits, ref[-1], rtol=1e-5, atol=1e-5)


def test_attention_and_residual_equal_eager_hf(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    ref = eager_forward(tiny_model, t.token_ids)
    for layer in range(tiny_model.n_layers):
        torch.testing.assert_close(t.attention(layer), ref.attentions[layer][0], atol=1e-5, rtol=0)
        torch.testing.assert_close(t.stream(layer), ref.hidden_states[layer][0], atol=1e-4, rtol=1e-5)
        rows = [2, 7, t.n_tokens - 1]
        torch.testing.assert_close(t.attention(layer, rows=rows), ref.attentions[layer][0][:, rows], atol=1e-5, rtol=0)


def test_causal_mask_and_rows_sum_to_one(tiny_model):
    att = explainer.trace(tiny_model, TEXT).attentions
    T = att.shape[-1]
    upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    assert torch.all(att[..., upper] == 0)
    assert torch.allclose(att.sum(-1), torch.ones(att.shape[:-1]), atol=1e-5)


def test_sliding_window_layers_read_only_their_window(tiny_gemma3):
    t = explainer.trace(tiny_gemma3, TEXT)
    assert t.windows == (8, 8, None) and t.n_tokens > 12
    T = t.n_tokens
    pos = torch.arange(T)
    too_old = pos[None, :] <= pos[:, None] - 8                       # (T, T) key 8+ positions back
    for layer in (0, 1):
        assert torch.all(t.attention(layer)[:, too_old] == 0)           # exactly 0 beyond the window
        assert torch.all(t.attention(layer)[:, ~too_old & (pos[None, :] <= pos[:, None])] > 0)
    assert torch.all(t.attention(2)[:, too_old] > 0)                    # the global layer reads everything
    assert [(r.theta, r.layers) for r in t.rotaries] == [(10_000.0, (0, 1)), (1_000_000.0, (2,))]


def test_one_key_value_head_serves_every_query_head(tiny_gemma3):
    t = explainer.trace(tiny_gemma3, TEXT)
    parts = t.qkv(2)
    assert parts.q.shape[0] == 4 and parts.k.shape[0] == 1 and parts.group == 4
    assert parts.scale == pytest.approx(16 ** -0.5)                     # query_pre_attn_scalar
    own_k = parts.k[0]
    for head in range(4):
        assert parts.kv_head(head) == 0
    attn = tiny_gemma3.arch.attention(tiny_gemma3.arch.blocks(tiny_gemma3.hf_model)[2])
    with torch.no_grad():                                              # the k norm is really applied
        h = tiny_gemma3.arch.attn_in_norm(tiny_gemma3.arch.blocks(tiny_gemma3.hf_model)[2])(t.stream(2))
        assert not torch.allclose(attn.k_proj(h), attn.k_norm(attn.k_proj(h)))
    assert torch.allclose(parts.k_unrotated[0], attn.k_norm(attn.k_proj(h)), atol=1e-6)
    assert own_k.shape == (t.n_tokens, 16)


def test_residual_bookkeeping(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    r = t.residual
    for i in range(tiny_model.n_layers):
        torch.testing.assert_close(r[i + 1], r[i] + t.attn_out_at(i) + t.mlp_out_at(i), atol=1e-5, rtol=1e-5)
        assert t.block_check(i) < 1e-4
        torch.testing.assert_close(t.mid(i), r[i] + t.attn_out_at(i))
    if t.positions is not None:                         # GPT-2: block 0 reads token + position
        assert torch.allclose(r[0], t.embeddings + t.positions, atol=1e-6)
    else:
        assert torch.allclose(r[0], t.embeddings)


def test_gemma_embeddings_are_scaled_by_the_root_of_the_width(tiny_gemma3):
    t = explainer.trace(tiny_gemma3, TEXT)
    table = tiny_gemma3.embedding_matrix()[t.token_ids]
    torch.testing.assert_close(t.embeddings, table * math.sqrt(tiny_gemma3.d_model))


def test_what_gemma_adds_is_the_post_norms_output(tiny_gemma3):
    t = explainer.trace(tiny_gemma3, TEXT)
    block = tiny_gemma3.arch.blocks(tiny_gemma3.hf_model)[1]
    with torch.no_grad():
        raw = block.mlp(block.pre_feedforward_layernorm(t.mid(1)))
        torch.testing.assert_close(t.mlp_out_at(1), block.post_feedforward_layernorm(raw), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(t.mlp_out_at(1), raw, atol=1e-3)


def test_final_residual_through_norm_and_head_gives_logits(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    with torch.no_grad():
        norm = tiny_model.arch.final_norm(tiny_model.hf_model)
        logits = tiny_model.hf_model.get_output_embeddings()(norm(t.residual[-1]))
    assert torch.allclose(logits, t.logits, atol=1e-5)


def test_mlp_activations_feed_the_down_projection(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    block = tiny_model.arch.blocks(tiny_model.hf_model)[1]
    down, post = tiny_model.arch.mlp_down(block), tiny_model.arch.mlp_post_norm(block)
    with torch.no_grad():
        out = down(t.mlp_activation(1))
        out = out if post is None else post(out)
    assert torch.allclose(out, t.mlp_out_at(1), atol=1e-5)


def _hook_count(model) -> int:
    return sum(len(mod._forward_hooks) + len(mod._forward_pre_hooks) for mod in model.hf_model.modules())


def test_model_is_left_unmodified(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.hf_model.state_dict().items()}
    hooks = _hook_count(tiny_model)      # HF may keep its own output-recording hooks; we add none
    t = explainer.trace(tiny_model, TEXT, ablate_heads=[(0, 1)], ablate_mlps=[1])
    t.attentions, t.mlp_out                  # on-demand stages leave no hooks either
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


def _alone_and_together(model, prompts):
    alone = {p: explainer.trace(model, p) for p in prompts}
    results: dict[str, Trace] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(prompts))

    def work(p: str) -> None:
        try:
            barrier.wait()
            results[p] = explainer.trace(model, p)
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(p,)) for p in prompts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    return alone, results


def test_threads_get_what_each_prompt_gives_alone(tiny_model):
    prompts = [f"Prompt number {i} says {'la ' * i}and ends." for i in range(10)]
    alone, together = _alone_and_together(tiny_model, prompts)
    for p in prompts:
        torch.testing.assert_close(together[p].next_token_logits, alone[p].next_token_logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(together[p].residual, alone[p].residual, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(together[p].attentions, alone[p].attentions, atol=1e-5, rtol=0)
        assert together[p].tokens == alone[p].tokens


def test_concurrent_traces_run_as_batches(tiny_llama, monkeypatch):
    sizes: list[int] = []
    real = tracing._forward

    def counting(model, batch):
        sizes.append(len(batch))
        return real(model, batch)
    monkeypatch.setattr(tracing, "_forward", counting)
    prompts = [f"Student {i} asks about {'cats ' * (i % 4)}today." for i in range(12)]
    _alone_and_together(tiny_llama, prompts)
    together = sizes[len(prompts):]
    assert sum(together) == len(prompts) and max(together) > 1       # several prompts shared a pass


def test_trace_many_equals_alone(tiny_model, monkeypatch):
    prompts = ["one", "two words", "The cat sat on the mat, the end", "猫 and 🐱"]
    sizes: list[int] = []
    real = tracing._forward
    monkeypatch.setattr(tracing, "_forward", lambda model, batch: sizes.append(len(batch)) or real(model, batch))
    many = tracing.trace_many(tiny_model, prompts)
    assert sizes == [4]                                                # one padded pass for all four
    for p, tr in zip(prompts, many):
        alone = explainer.trace(tiny_model, p)
        assert tr.n_tokens == alone.n_tokens and tr.text == p
        torch.testing.assert_close(tr.residual, alone.residual, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(tr.next_token_logits, alone.next_token_logits, atol=1e-4, rtol=1e-4)


def test_too_large_is_refused_before_it_starts_and_others_still_work(tiny_llama, monkeypatch):
    long = explainer.trace(tiny_llama, "word " * 300, max_tokens=120)
    need = tracing.estimate_bytes(tiny_llama, 120)
    monkeypatch.setenv("LLM_EXPLAINER_MEMORY_GB", str(need / 2 / 2**30))
    with pytest.raises(TooLarge, match="more than"):
        explainer.trace(tiny_llama, "word " * 300, max_tokens=120)
    small = explainer.trace(tiny_llama, "a short one")                 # the same model keeps serving
    assert small.n_tokens < 10
    with pytest.raises(TooLarge, match="attention weights"):          # on-demand stages are guarded too
        long.attentions
    assert long.attention(1, rows=[5]).shape == (tiny_llama.n_heads, 1, 120)   # a small view still works


def test_kept_memory_grows_with_tokens_not_their_square(tiny_llama):
    short = explainer.trace(tiny_llama, "word " * 30, max_tokens=30)
    long = explainer.trace(tiny_llama, "word " * 120, max_tokens=120)
    assert long.n_tokens == 4 * short.n_tokens
    m = tiny_llama
    per_token = 4 * (m.n_layers + 1) * m.d_model + 2 * 4 * m.n_layers + 8   # residual, write norms, token id
    assert long.kept_bytes() - short.kept_bytes() == per_token * (long.n_tokens - short.n_tokens)


def test_ablating_a_head_changes_the_output_and_only_for_that_pass(tiny_model):
    base = explainer.trace(tiny_model, TEXT)
    off = explainer.trace(tiny_model, TEXT, ablate_heads=[(1, 0)])
    assert off.ablated_heads == frozenset({(1, 0)})
    assert not torch.equal(off.next_token_logits, base.next_token_logits)
    assert torch.equal(off.residual[1], base.residual[1])              # layer 0 is untouched
    assert off.block_check(1) < 1e-4                                   # recomputed with the head off too
    again = explainer.trace(tiny_model, TEXT)
    assert torch.equal(again.next_token_logits, base.next_token_logits)   # restored exactly


def test_ablating_an_mlp_zeroes_what_it_adds(tiny_model):
    off = explainer.trace(tiny_model, TEXT, ablate_mlps=[0])
    assert torch.count_nonzero(off.mlp_out_at(0)) == 0
    r = off.residual
    assert torch.allclose(r[1], r[0] + off.attn_out_at(0), atol=1e-6)


@pytest.mark.parametrize("heads,mlps", [([(9, 0)], []), ([(0, 99)], []), ([], [5])])
def test_bad_ablation_is_refused(tiny_gpt2, heads, mlps):
    with pytest.raises(ValueError, match="There is no"):
        explainer.trace(tiny_gpt2, TEXT, ablate_heads=heads, ablate_mlps=mlps)


def test_bad_rows_and_layers_are_refused(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, TEXT)
    with pytest.raises(ValueError, match="Positions"):
        t.attention(0, rows=[t.n_tokens])
    with pytest.raises(ValueError, match="no layer"):
        t.attention(tiny_gpt2.n_layers)


def test_trace_accessors_return_copies(tiny_gpt2):
    t = explainer.trace(tiny_gpt2, TEXT)
    t.residual.zero_()
    t.attention(0).zero_()
    t.logits.zero_()
    t.mlp_activation(0).zero_()
    assert t.residual.abs().sum() > 0 and t.attention(0).sum() > 0 and t.logits.abs().sum() > 0
    assert t.mlp_activation(0).abs().sum() > 0


def test_save_and_load_round_trip(tiny_model, tmp_path):
    t = explainer.trace(tiny_model, "猫 sat " + TEXT, ablate_heads=[(0, 1)])
    loaded = Trace.load(t.save(tmp_path / "trace.npz"), model=tiny_model)
    assert loaded.tokens == t.tokens and loaded.token_bytes == t.token_bytes and loaded.text == t.text
    assert loaded.ablated_heads == t.ablated_heads and loaded.precision == t.precision
    for name in ("token_ids", "embeddings", "residual", "attentions", "attn_out", "mlp_out",
                 "mlp_activations", "logits", "next_token_logits"):
        assert torch.equal(getattr(loaded, name), getattr(t, name)), name
    assert (loaded.positions is None) == (t.positions is None)
    assert loaded.metadata() == t.metadata() and loaded.windows == t.windows


def test_a_few_rows_equal_the_whole_layer(tiny_model):
    t = explainer.trace(tiny_model, TEXT)
    fresh = explainer.trace(tiny_model, TEXT + " ")                    # nothing cached yet
    rows = [0, 4, fresh.n_tokens - 1]
    for layer in range(tiny_model.n_layers):
        part = fresh.parts(layer, rows)                                # computed for these rows alone
        whole = t.parts(layer)
        rows_t = [0, 4, t.n_tokens - 1]
        if fresh.n_tokens == t.n_tokens:
            torch.testing.assert_close(part.attn_added, whole.attn_added[rows_t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(part.out, fresh.stream(layer + 1)[rows], atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(fresh.mlp_out_at(layer, rows), fresh.mlp_out_at(layer)[rows], atol=1e-5, rtol=1e-5)


def test_summaries_of_the_pass_match_the_recomputed_blocks(tiny_model):
    t = explainer.trace(tiny_model, TEXT, ablate_mlps=[0])
    attn_norms, mlp_norms = t.write_norms()
    torch.testing.assert_close(attn_norms, t.attn_out.norm(dim=-1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mlp_norms, t.mlp_out.norm(dim=-1), atol=1e-4, rtol=1e-4)
    assert torch.all(mlp_norms[0] == 0)                                # switched off: adds nothing
    peak, where = t.mlp_peaks()
    acts = t.mlp_activations                                           # (n, T, d_mlp)
    torch.testing.assert_close(peak.abs(), acts.abs().amax(dim=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(acts.gather(1, where[:, None, :])[:, 0], peak, atol=1e-5, rtol=1e-5)


def test_batched_summaries_ignore_the_padding(tiny_llama):
    short, long = tracing.trace_many(tiny_llama, ["a cat", TEXT])
    alone = explainer.trace(tiny_llama, "a cat")
    assert short.write_norms()[0].shape == (tiny_llama.n_layers, short.n_tokens)
    torch.testing.assert_close(short.mlp_peaks()[0], alone.mlp_peaks()[0], atol=1e-5, rtol=1e-4)
    assert torch.equal(short.mlp_peaks()[1], alone.mlp_peaks()[1])
    assert int(short.mlp_peaks()[1].max()) < short.n_tokens
