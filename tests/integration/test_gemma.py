"""The embedded multilingual model, Gemma 3 270M: Chinese as words, and traced exactly."""
from __future__ import annotations

import pytest
import torch

import explainer
from explainer.analysis.prediction import next_token_distribution, softmax_probs
from tests.reference import eager_forward, plain_logits, relative

pytestmark = pytest.mark.integration
ZH = "法国的首都是巴黎。德国的首都是"


def _top(model, tr, k=3):
    probs = torch.softmax(tr.next_token_logits.double(), -1)
    values, ids = probs.topk(k)
    return [(model.tokenizer.decode([int(i)]), float(p)) for p, i in zip(values, ids)]


def test_it_is_the_model_the_readme_describes(gemma_model):
    m = gemma_model
    assert (m.arch.family, m.n_layers, m.n_heads, m.n_kv_heads, m.head_dim) == ("gemma3", 18, 4, 1, 256)
    assert (m.d_model, m.d_mlp, m.vocab_size) == (640, 2048, 262_144)
    assert m.n_parameters() == 268_098_176


def test_its_fast_tokenizer_equals_the_reference_one(gemma_model):
    from transformers import AutoTokenizer
    from explainer.embedded import GEMMA3, model_folder
    ref = AutoTokenizer.from_pretrained(model_folder(GEMMA3))
    for text in (ZH, "The capital of France is", "猫 🐱\n\n  <b>x</b>", "ünïcödé — ｆｕｌｌ"):
        assert gemma_model.tokenizer(text)["input_ids"] == ref(text)["input_ids"]


def test_chinese_comes_in_whole_words_and_the_lesson_works(gemma_model):
    tr = explainer.trace(gemma_model, ZH)
    assert tr.tokens[1:] == ("法国", "的首", "都是", "巴黎", "。", "德国", "的首", "都是")
    assert not any(t.startswith("<0x") for t in tr.tokens)
    word, p = _top(gemma_model, tr)[0]
    assert word == "柏" and 0.45 < p < 0.8                              # the start of 柏林
    cats = explainer.trace(gemma_model, "猫和狗都是")
    first = _top(gemma_model, cats)[0][0]
    assert first == "动物" and all("\u4e00" <= ch <= "\u9fff" for ch in first)


def test_chinese_word_vectors_tell_the_lesson_the_right_way_round(gemma_model):
    """The Embeddings lesson in Chinese: 猫·狗 above 猫·汉堡, 国王 − 男人 + 女人 → 女王 first (README figures)."""
    from explainer.analysis import vocabulary as voc
    from explainer.tokens import vocabulary_labels

    emb, labels = gemma_model.embedding_matrix(), vocabulary_labels(gemma_model)
    with gemma_model.tokenizer_lock:
        w = {x: voc.lookup_word(gemma_model.tokenizer, x) for x in ("猫", "狗", "汉堡", "国王", "男人", "女人", "女王")}
    dog, burger = voc.pair_similarity(emb, [(w["猫"], w["狗"]), (w["猫"], w["汉堡"])])
    assert dog.similarity == pytest.approx(0.646, abs=0.01) and burger.similarity == pytest.approx(0.484, abs=0.01)
    a = voc.analogy(emb, labels, w["国王"], w["男人"], w["女人"], expected=w["女王"])
    assert a.excluded.labels[0] == "女王" and a.expected_rank_excluded == 1
    assert "狗" in voc.nearest_neighbours(emb, labels, w["猫"], k=6).labels


def test_english_still_works(gemma_model):
    tr = explainer.trace(gemma_model, "The capital of France is Paris. The capital of Germany is")
    word, p = _top(gemma_model, tr)[0]
    assert word == " Berlin" and p > 0.6


def test_logits_and_attention_equal_plain_hugging_face(gemma_model):
    tr = explainer.trace(gemma_model, ZH + "柏林。日本的首都是东京。")
    assert relative(tr.logits, plain_logits(gemma_model, tr.token_ids)) <= 1e-4
    ref = eager_forward(gemma_model, tr.token_ids)
    for layer in (0, 5, 11, 17):
        torch.testing.assert_close(tr.attention(layer), ref.attentions[layer][0], atol=1e-5, rtol=0)
        assert relative(tr.stream(layer), ref.hidden_states[layer][0]) <= 1e-4     # sdpa pass vs eager pass
        r = tr.residual
        assert relative(r[layer] + tr.attn_out_at(layer) + tr.mlp_out_at(layer), r[layer + 1]) <= 1e-5


def test_local_layers_read_only_the_last_512_tokens(gemma_model):
    text = "大型语言模型一个词一个词地读文本，每一层都在残差流里写下自己的发现。" * 40
    tr = explainer.trace(gemma_model, text, max_tokens=700)
    assert tr.n_tokens == 700
    assert tr.windows[:6] == (512, 512, 512, 512, 512, None)
    last = tr.attention(0, rows=[699])[:, 0]                            # (H, T) layer 0, last query
    assert torch.all(last[:, :188] == 0) and torch.all(last[:, 188:] > 0)   # keys 0..187 are > 511 back
    assert torch.all(tr.attention(5, rows=[699])[:, 0, :188] > 0)       # a global layer reads them
    ref = eager_forward(gemma_model, tr.token_ids)
    torch.testing.assert_close(tr.attention(0, rows=[699]), ref.attentions[0][0][:, [699]], atol=1e-5, rtol=0)
    torch.testing.assert_close(tr.attention(5, rows=[699]), ref.attentions[5][0][:, [699]], atol=1e-5, rtol=0)


def test_a_long_trace_stays_small(gemma_model):
    text = "The residual stream carries what every layer wrote. " * 200
    tr = explainer.trace(gemma_model, text, max_tokens=1024)
    assert tr.n_tokens == 1024
    assert tr.kept_bytes() <= 600 * 2**20 and tr.nbytes() <= 600 * 2**20
    probs = softmax_probs(tr.next_token_logits)
    assert probs.shape == (262_144,) and abs(float(probs.sum()) - 1.0) < 1e-9
    dist = next_token_distribution(tr.next_token_logits, top_k=50)
    assert dist.kept == 50 and dist.vocab_size == 262_144
