"""The tiny GPT learns the built-in facts; fine-tuning shifts them; save -> load is exact."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from explainer.learning import (PROBES, Trainer, build_tokenizer, encode_lines, facts_corpus, fine_tune,
                                finetune_corpus, next_token_batch, next_token_distribution, ngram_report,
                                save_tiny_model, unseen_continuations)


@pytest.fixture(scope="module")
def trained_en() -> Trainer:
    trainer = Trainer(language="en", max_steps=300, eval_every=100)
    trainer.step(300)
    return trainer


def test_next_token_batch_targets_are_shifted_inputs() -> None:
    stream = torch.arange(100)
    x, y = next_token_batch(stream, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)  # stream[i] == i, so the next token is i + 1


def test_english_model_learns_the_apple_is_red(trained_en: Trainer) -> None:
    snap = trained_en.snapshot()
    assert snap.step == 300 and snap.finished and len(snap.train_loss) == 300
    assert np.mean(snap.train_loss[:10]) > 4.0  # random start: about log(vocab size)
    assert np.mean(snap.train_loss[-20:]) < 1.2
    assert snap.heldout_loss[-1][1] < snap.heldout_loss[0][1] - 2.0
    first, last = snap.checkpoints[0], snap.latest
    assert first.probes[0].best != "red"
    assert last.probes[0].prompt == "the apple is" and last.probes[0].best == "red"
    assert last.probes[0].top[0].prob > 0.5
    assert last.probes[1].best == "blue"  # the sky is
    assert last.samples[0].greedy.startswith("red")


def test_chinese_model_learns_apples_are_red() -> None:
    trainer = Trainer(language="zh", max_steps=250, eval_every=250, n_samples=1)
    snap = trainer.step(250)
    assert snap.latest.probes[0].prompt == "苹果是" and snap.latest.probes[0].best == "红"
    assert snap.latest.samples[0].greedy.startswith("红色的")


def test_training_is_reproducible() -> None:
    a = Trainer(language="en", max_steps=5, eval_every=5).step(5)
    b = Trainer(language="en", max_steps=5, eval_every=5).step(5)
    assert a.train_loss == b.train_loss


def test_attention_before_and_after(trained_en: Trainer) -> None:
    snap = trained_en.snapshot()
    before, after = snap.attention_before, snap.attention_after
    T = len(before.tokens)
    assert before.tokens == after.tokens and before.tokens[:2] == ("the", "apple")
    assert before.weights.shape == after.weights.shape == (2, 2, T, T)
    np.testing.assert_allclose(after.weights.sum(-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(after.weights, 1), 0.0)  # causal: no weight on the future
    assert before.step == 0 and after.step == 300
    assert not np.allclose(before.weights, after.weights, atol=1e-3)


def test_fine_tuning_shifts_the_probe(trained_en: Trainer) -> None:
    original = {k: v.clone() for k, v in trained_en.model.state_dict().items()}
    calls: list[tuple[int, int]] = []
    result = fine_tune(trained_en.copy_model(), trained_en.tokenizer, finetune_corpus("en"), steps=60,
                       progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 60) and calls[-1] == (50, 60) and len(result.loss) == 60
    assert result.before[0].best == "red"
    assert result.after[0].best == "blue"  # "in the land of oz the apple is blue ."
    assert "the apple is" in result.changed
    assert next_token_distribution(result.base, trained_en.tokenizer, "the apple is").best == "red"
    for k, v in trained_en.model.state_dict().items():  # the trainer's model is untouched
        assert torch.equal(v, original[k])


def test_save_and_load_round_trip(trained_en: Trainer, tmp_path: Path) -> None:
    folder = save_tiny_model(trained_en, tmp_path / "tiny")
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("the cow says moo .", return_tensors="pt")["input_ids"]
    assert ids.tolist() == trained_en.tokenizer("the cow says moo .", return_tensors="pt")["input_ids"].tolist()
    trained_en.model.eval()
    with torch.no_grad():
        expected = trained_en.model(input_ids=ids).logits
        got = model(input_ids=ids).logits
    assert torch.equal(expected, got)


def test_save_plain_model_needs_tokenizer(trained_en: Trainer, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_tiny_model(trained_en.model, tmp_path)
    save_tiny_model(trained_en.model, tmp_path, trained_en.tokenizer)
    assert (tmp_path / "tokenizer.json").exists()


def test_encode_lines_concatenates_sentences() -> None:
    tok = build_tokenizer("en")
    stream = encode_lines(tok, ["the sky is blue .", "snow is white ."])
    assert tok.convert_ids_to_tokens(stream.tolist()) == "the sky is blue . snow is white .".split()
    assert len(facts_corpus("en").train) > 300


def test_ngram_report_on_builtin_corpus_and_neural_generalisation(trained_en: Trainer) -> None:
    corpus, tok = facts_corpus("en"), trained_en.tokenizer
    report = ngram_report(tok, corpus.train, corpus.heldout, PROBES["en"])
    assert report.probes["the apple is"][3][0][0] == "red"  # trigram "apple is" -> red
    assert report.probes["the apple is"][1][0][0] == "."  # unigram: the most common token
    ce = {n: s.cross_entropy for n, s in report.heldout.items()}
    assert ce[2] < ce[1]  # context helps
    assert len({s.n_tokens for s in report.heldout.values()}) == 1  # same positions scored
    held = [t for line in corpus.heldout for t in tok.convert_ids_to_tokens(tok(line)["input_ids"])]
    found = unseen_continuations(report.models[3], held, trained_en.model, tok, limit=5)
    assert len(found) == 5 and found[0].neural_prob > 0.5  # counting says 0, the network says likely


def test_weights_come_from_a_private_generator_not_the_global_one():
    """Sessions build tiny models in their own threads: the global random state must not matter."""
    from explainer.learning import TinyConfig, build_tiny_bert, build_tiny_gpt

    def weights(build, global_seed: int, seed: int) -> list[torch.Tensor]:
        torch.manual_seed(global_seed)                 # another session's draws, whatever they were
        return [p.detach().clone() for p in build(40, TinyConfig(seed=seed)).parameters()]

    for build in (build_tiny_gpt, build_tiny_bert):
        a, b, other = weights(build, 1, 3), weights(build, 2, 3), weights(build, 1, 4)
        assert all(torch.equal(x, y) for x, y in zip(a, b))                  # same seed, same model
        assert not all(torch.equal(x, y) for x, y in zip(a, other))          # another seed, another model
    model = build_tiny_gpt(40, TinyConfig(seed=3))
    assert model.lm_head.weight is model.transformer.wte.weight              # still tied
    assert float(model.transformer.h[0].ln_1.weight.detach().mean()) == 1.0
    assert 0.01 < float(model.transformer.wte.weight.detach().std()) < 0.03  # normal(0, 0.02)
