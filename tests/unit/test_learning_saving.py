"""A saved tiny model loads on every other page (load_model + trace) and back into the Learning page."""
from __future__ import annotations

import explainer
from explainer.learning import Trainer, save_tiny_model
from explainer.learning.corpus import custom_sentences, detect_language
from explainer.learning.saving import load_tiny_weights, read_run_info, saved_runs, write_run_info
from explainer.learning.tokenizer import build_tokenizer, probes_from_lines


def test_saved_tiny_model_loads_and_traces(tmp_path) -> None:
    trainer = Trainer(language="en", max_steps=10, eval_every=10)
    trainer.step(10)
    folder = save_tiny_model(trainer, tmp_path / "tiny")
    model = explainer.load_model(str(folder), device="cpu")
    assert model.name == str(folder) and model.n_layers == 2 and model.vocab_size == len(trainer.tokenizer)
    tr = explainer.trace(model, "the apple on the table is red .", 64)
    assert list(tr.tokens) == ["the", "apple", "on", "the", "table", "is", "red", "."]
    # the loaded model predicts exactly what the trainer's model predicts
    ids = trainer.tokenizer("the apple is", return_tensors="pt")["input_ids"]
    expected = trainer.copy_model()(input_ids=ids).logits[0, -1]
    got = model.hf_model(input_ids=ids).logits[0, -1]
    assert (expected - got).abs().max() < 1e-5


def test_chinese_tiny_model_traces(tmp_path) -> None:
    trainer = Trainer(language="zh", max_steps=5, eval_every=5)
    trainer.step(5)
    model = explainer.load_model(str(save_tiny_model(trainer, tmp_path / "zh")), device="cpu")
    tr = explainer.trace(model, "苹果是红色的。", 64)
    assert "".join(tr.tokens) == "苹果是红色的。"


def test_run_info_and_restore_reproduce_the_run(tmp_path) -> None:
    trainer = Trainer(language="en", max_steps=20, eval_every=10)
    done = trainer.step(20)
    folder = save_tiny_model(trainer, tmp_path / "run")
    write_run_info(folder, {"source": "facts_en", "step": 20, "train_loss": list(done.train_loss)})
    assert read_run_info(folder)["step"] == 20 and saved_runs(tmp_path) == [folder]
    assert read_run_info(tmp_path) == {} and saved_runs(tmp_path / "missing") == []
    fresh = Trainer(language="en", max_steps=300, eval_every=10)
    back = fresh.restore(load_tiny_weights(folder), 20, done.train_loss, done.heldout_loss)
    assert back.step == 20 and back.train_loss == done.train_loss and not back.finished
    assert [c.step for c in back.checkpoints] == [0, 20]
    assert back.latest.probes == done.latest.probes and back.heldout_loss == done.heldout_loss
    assert back.checkpoints[0].probes == done.checkpoints[0].probes   # same seeded step 0
    fresh.step(5)                                                      # and it trains on from there
    assert fresh.snapshot().step == 25


def test_set_max_steps_lets_a_finished_run_go_further() -> None:
    trainer = Trainer(language="en", max_steps=5, eval_every=5)
    assert trainer.step(10).step == 5
    assert not trainer.set_max_steps(8).finished
    assert trainer.step(10).step == 8


def test_custom_text_helpers() -> None:
    assert detect_language("苹果是红色的。") == "zh" and detect_language("the apple") == "en"
    assert custom_sentences("one two. three four! five?") == ["one two.", "three four!", "five?"]
    lines = [f"line {i}" for i in range(12)]
    assert custom_sentences("\n".join(lines)) == lines
    tok = build_tokenizer("en")
    assert probes_from_lines(tok, ["the apple is red .", "the apple is red .", "the sky is blue ."]) == (
        "the apple is", "the sky is")
