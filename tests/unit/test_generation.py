"""Generation on the tiny fixtures: greedy = HF argmax, seeds reproduce, settings are respected."""
import pytest
import torch

from explainer.analysis import generation as gen
from explainer.tokens import token_pieces
from explainer.figures import generation as figs
from explainer.text import texts
from explainer.view import View

TEXT = "Once upon a time"
T = {k: k for k in ("chosen", "runner_up", "removed", "prob", "prob_adjusted", "outside_top", "prob_chosen",
                    "entropy", "step", "confidence_title")}
T["step_title"] = "step {step}: {token} {prob:.1%}"
T["chip_hover"] = "step {step} {prob}"
VIEW = View(T, texts("common", "en"))


def test_greedy_equals_hf_argmax_at_every_step(tiny_model):
    out = gen.generate(tiny_model, TEXT, 4)
    ids = list(out.prompt_ids)
    for step in out.steps:
        with torch.inference_mode():
            logits = tiny_model.hf_model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert step.chosen_id == int(logits.argmax())
        assert step.chosen_prob == pytest.approx(float(torch.softmax(logits.double(), -1).max()))
        assert step.top_ids[0] == step.chosen_id and step.chosen_adjusted == 1.0 and step.seed is None
        ids.append(step.chosen_id)
    assert len(out.steps) == 4
    with tiny_model.tokenizer_lock:
        assert out.text == tiny_model.tokenizer.decode(ids)


def test_greedy_matches_hf_generate(tiny_llama):
    out = gen.generate(tiny_llama, TEXT, 5)
    with torch.inference_mode():
        ref = tiny_llama.hf_model.generate(torch.tensor([out.prompt_ids]), max_new_tokens=5, do_sample=False,
                                           min_new_tokens=5, pad_token_id=0)
    assert [s.chosen_id for s in out.steps] == ref[0, len(out.prompt_ids):].tolist()


def test_same_seed_same_text_and_step_by_step_equals_generate(tiny_gpt2):
    settings = gen.GenerationSettings(greedy=False, temperature=1.5)
    a = gen.generate(tiny_gpt2, TEXT, 5, settings, seed=7)
    b = gen.generate(tiny_gpt2, TEXT, 5, settings, seed=7)
    assert [s.chosen_id for s in a.steps] == [s.chosen_id for s in b.steps]
    others = {tuple(s.chosen_id for s in gen.generate(tiny_gpt2, TEXT, 2, settings, seed=k).steps) for k in range(3)}
    assert len(others) > 1                                    # the seed matters
    steps: list = []
    for _ in range(5):
        steps.append(gen.continue_generation(tiny_gpt2, list(a.prompt_ids), steps, settings, 7))
    assert [s.chosen_id for s in steps] == [s.chosen_id for s in a.steps]
    assert all(s.seed == gen.step_seed(7, s.index) for s in a.steps)


def test_sampling_respects_top_k(tiny_gpt2):
    settings = gen.GenerationSettings(greedy=False, temperature=3.0, top_k=3, show=10)
    for seed in range(5):
        step = gen.continue_generation(tiny_gpt2, [10, 20, 30], [], settings, seed)
        assert step.chosen_id in step.top_ids[:3]
        assert step.kept == 3 and sum(a > 0 for a in step.top_adjusted) == 3
        assert sum(step.top_adjusted) == pytest.approx(1.0)
    one = gen.GenerationSettings(greedy=False, top_k=1)
    assert gen.generate_step(tiny_gpt2, [10, 20, 30], one, 123).chosen_id == \
        gen.generate_step(tiny_gpt2, [10, 20, 30], gen.GenerationSettings(), 0).chosen_id


def test_bad_inputs(tiny_gpt2):
    with pytest.raises(ValueError):
        gen.generate(tiny_gpt2, TEXT, 0)
    with pytest.raises(ValueError):
        gen.generate(tiny_gpt2, TEXT, gen.MAX_NEW_TOKENS + 1)
    with pytest.raises(ValueError):
        gen.generate(tiny_gpt2, "   ", 3)
    with pytest.raises(ValueError):
        gen.generate_step(tiny_gpt2, [], gen.GenerationSettings(), 0)
    long_text = "word " * 400
    out = gen.generate(tiny_gpt2, long_text, 1)
    room = min(gen.MAX_PROMPT_TOKENS, tiny_gpt2.context_length - gen.MAX_NEW_TOKENS)   # 128 - 64 here
    assert out.truncated and len(out.prompt_ids) == room and len(out.steps) == 1


def test_figures(tiny_gpt2):
    settings = gen.GenerationSettings(greedy=False, top_k=2, show=6)
    out = gen.generate(tiny_gpt2, TEXT, 3, settings, seed=1)
    step = out.steps[1]
    fig = figs.step_figure(step, VIEW)
    colours = list(fig.data[0].marker.color)
    assert colours[list(step.top_ids).index(step.chosen_id)] == figs.CHOSEN
    assert colours.count(figs.REMOVED) == 4 and len(set(fig.data[0].y)) == 6
    assert "%{x:.4%}" in fig.data[0].hovertemplate
    conf = figs.confidence_figure(gen.SoFar(TEXT, out.steps), VIEW, selected=1)
    assert list(conf.data[0].y) == pytest.approx([s.chosen_prob for s in out.steps])
    assert list(conf.data[1].y) == pytest.approx([s.entropy_bits for s in out.steps])
    html = figs.text_html(gen.SoFar("<script>x</script>", out.steps), VIEW, selected=0)
    assert "<script>" not in html and "&lt;script&gt;" in html and html.count('class="tok"') == 3


def test_pill_label_escapes_markdown():
    step = gen.Step(0, 1, " **bold** [x](y)", 0.5, 1.0, (1,), ("a",), (0.5,), (1.0,), 1.0, 1, True, None, False)
    label = figs.pill_label(step)
    assert label.startswith("1 · ") and "\\*\\*bold\\*\\*" in label and "\\[x\\]\\(y\\)" in label


def test_the_full_text_waits_for_a_character_to_be_complete(tiny_gpt2):
    """Byte pieces of one character: the text shows no "�" before the last byte, the character after it."""
    ids = tiny_gpt2.tokenizer.encode("Cats:", add_special_tokens=False)
    cat = tiny_gpt2.tokenizer.encode("猫", add_special_tokens=False)           # byte-level BPE: several ids
    assert len(cat) > 1
    raw = token_pieces(tiny_gpt2, cat)
    steps = [gen.Step(i, cid, "", 0.5, 1.0, (), (), (), (), 1.0, 1, True, None, False, chosen_bytes=raw[i])
             for i, cid in enumerate(cat)]
    assert gen.decode(tiny_gpt2, ids, steps[:-1], whole_characters=True) == "Cats:"
    assert gen.decode(tiny_gpt2, ids, steps[:-1]).startswith("Cats:\ufffd")        # the exact decode
    assert gen.decode(tiny_gpt2, ids, steps, whole_characters=True) == "Cats:猫"
