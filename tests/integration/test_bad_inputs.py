"""Bad input everywhere a user can type or choose: the library and every page (AppTest)."""
from __future__ import annotations

import time

import pytest

import explainer
from explainer.models import ModelLoadError, default_tokenizer
from explainer.text import texts
from streamlit.testing.v1 import AppTest

from explainer.ui.frame.binding import widget_key
from tests.app.conftest import APP
from tests.e2e.conftest import app_pages, is_stub

pytestmark = pytest.mark.integration
EN = texts("common", "en")
ARTICLE = ("In the beginning the tokenizer cut the text into pieces. " * 2000)[:100_000]
ODD_TEXTS = {
    "nul-and-control": "a\x00b\x01c\x07d\x1b[0m e\u200bf\ufeffg",
    "emoji-zwj": "👩‍👩‍👧 and 🏳️‍🌈 and 🇨🇳",
    "rtl": "مرحبا بالعالم — שלום עולם",
    "html": "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "article": ARTICLE,
    "lone-surrogate-free-cjk": "法国的首都是巴黎。" * 3,
}
REAL_PAGES = [slug for file, slug in app_pages() if not is_stub(file)]
OWN_MODEL = {"learning"}                 # pages that train their own tiny model: no prompt, no big model
PROMPT_PAGES = [p for p in REAL_PAGES if p not in OWN_MODEL]


# ---------------------------------------------------------------- bad model folders


def _tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    return GPT2LMHeadModel(GPT2Config(vocab_size=49152, n_positions=64, n_embd=32, n_layer=1, n_head=2,
                                      bos_token_id=1, eos_token_id=2))


def save_pickle_only(folder) -> None:
    """A model saved the old way: only a pickled ``pytorch_model.bin`` (transformers 5 always
    writes safetensors, so ``safe_serialization=False`` is emulated with torch.save)."""
    import torch
    model = _tiny_gpt2()
    model.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-models")
    tok = default_tokenizer()
    folders = {}
    folders["empty"] = root / "empty"
    folders["empty"].mkdir()
    folders["no-weights"] = root / "no-weights"
    _tiny_gpt2().save_pretrained(folders["no-weights"])
    tok.save_pretrained(folders["no-weights"])
    (folders["no-weights"] / "model.safetensors").unlink()
    folders["corrupt"] = root / "corrupt"
    _tiny_gpt2().save_pretrained(folders["corrupt"])
    tok.save_pretrained(folders["corrupt"])
    (folders["corrupt"] / "model.safetensors").write_bytes(b"\x00garbage\xff" * 997)
    folders["pickle-only"] = root / "pickle-only"
    save_pickle_only(folders["pickle-only"])
    tok.save_pretrained(folders["pickle-only"])
    folders["bad-json"] = root / "bad-json"
    folders["bad-json"].mkdir()
    (folders["bad-json"] / "config.json").write_text("{not json")
    folders["good"] = root / "good"
    _tiny_gpt2().save_pretrained(folders["good"])
    tok.save_pretrained(folders["good"])
    return folders


@pytest.mark.parametrize("which, words", [
    ("empty", "config.json"), ("no-weights", "no weights"), ("corrupt", "corrupt"),
    ("pickle-only", "pickle"), ("bad-json", "JSON"),
])
def test_bad_model_folders_raise_a_helpful_error_quickly(bad_models, which, words):
    if which == "pickle-only":
        assert list(bad_models[which].glob("*.bin")) and not list(bad_models[which].glob("*.safetensors"))
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError) as err:
        explainer.load_model(str(bad_models[which]), device="cpu")
    assert time.perf_counter() - t0 < 15
    assert words.lower() in str(err.value).lower(), str(err.value)


def test_good_folder_loads_and_pickle_only_loads_when_allowed(bad_models):
    assert explainer.load_model(str(bad_models["good"]), device="cpu").n_layers == 1
    model = explainer.load_model(str(bad_models["pickle-only"]), device="cpu", allow_pickle=True)
    assert explainer.trace(model, "hello").n_tokens >= 1


@pytest.mark.parametrize("name", ["not a model!!", "../../etc/passwd", "/no/such/folder", "x" * 5000,
                                  "definitely-not/a-cached-model-xyz"])
def test_unknown_model_names_raise_quickly(monkeypatch, name):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises((ModelLoadError, TypeError, ValueError)) as err:
        explainer.load_model(name, device="cpu")
    assert time.perf_counter() - t0 < 15
    assert len(str(err.value)) > 20


def test_model_name_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError):
        explainer.load_model(42)


# ---------------------------------------------------------------- bad text, library level


@pytest.mark.parametrize("text, error", [
    ("", ValueError), ("   \n\t ", ValueError), (None, TypeError), (b"bytes", TypeError), (42, TypeError),
    (["list"], TypeError),
])
def test_trace_rejects_bad_text(default_model, text, error):
    with pytest.raises(error):
        explainer.trace(default_model, text)


@pytest.mark.parametrize("max_tokens", [0, -1, 2.5, "10"])
def test_trace_rejects_bad_max_tokens(default_model, max_tokens):
    with pytest.raises((ValueError, TypeError)):
        explainer.trace(default_model, "hello", max_tokens)


@pytest.mark.parametrize("name", list(ODD_TEXTS))
def test_trace_reads_odd_text(default_model, name):
    tr = explainer.trace(default_model, ODD_TEXTS[name], max_tokens=256)
    assert 0 < tr.n_tokens <= 256
    assert tr.truncated == (name == "article")
    assert tr.logits.isfinite().all()


def test_text_exactly_at_the_token_limit_and_one_over(default_model):
    tok = default_model.tokenizer
    text = " the" * 80
    n = len(tok(text, add_special_tokens=True)["input_ids"])
    at_limit = explainer.trace(default_model, text, max_tokens=n)
    assert at_limit.n_tokens == n and not at_limit.truncated
    over = explainer.trace(default_model, text, max_tokens=n - 1)
    assert over.n_tokens == n - 1 and over.truncated
    assert over.tokens == at_limit.tokens[:-1]


# ---------------------------------------------------------------- every page (AppTest)


def open_linked(page: str, **query: str) -> AppTest:
    """Open ``page`` first, as a link ``/<page>?<query>`` would (values arrive through the URL,
    exactly as they do for a user; presetting session state after a first run would be
    overwritten by the sidebar widgets that already exist)."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"pages/{page}.py").run()
    return at


def _friendly(at) -> list[str]:
    return [e.value for e in list(at.info) + list(at.warning) + list(at.error)]


@pytest.mark.parametrize("page", REAL_PAGES)
@pytest.mark.parametrize("kind", ["empty", "whitespace", "article", "nul-and-control", "html"])
def test_every_page_survives_bad_text(page, kind):
    prompt = {"empty": "", "whitespace": " \n\t "}.get(kind, ODD_TEXTS.get(kind))
    at = open_linked(page, prompt=prompt, max_tokens="64")
    assert not at.exception, at.exception
    assert at.sidebar.text_area[0].value == prompt[:100_000]        # the user's text is kept
    if page in OWN_MODEL:
        assert at.get("plotly_chart"), "a page with its own model still shows its charts"
        return
    if kind in ("empty", "whitespace"):
        assert any(EN["empty_prompt"][:25] in m for m in _friendly(at))
    if kind == "article":
        assert any(EN["truncated"].format(n=64)[:30] in m for m in _friendly(at))
    if kind == "html":
        for block in at.get("html"):
            assert "<script" not in block.proto.body and "<img src=x" not in block.proto.body
        for md in at.markdown:
            assert "<script" not in md.value or not md.proto.allow_html


@pytest.mark.parametrize("page", REAL_PAGES)
def test_every_page_survives_odd_url_values(page):
    query = {"layer": "-5", "head": "abc", "temp": "999", "lang": "xx", "max_tokens": "99999",
             "presenter": "maybe", "neuron": "1e9", "token": "99999", "top_k": "-1", "seed": "x" * 5000,
             "unknown": "y" * 5000}
    at = open_linked(page, **query)
    assert not at.exception, at.exception
    notices = " ".join(w.value for w in at.warning)
    for name in ("layer", "head", "temp", "lang", "max_tokens", "presenter", "seed"):
        assert f"“{name}”" in notices, (name, notices)


BAD_MODEL_CASES = [(p, "corrupt") for p in PROMPT_PAGES] + [("tokens", "pickle-only"), ("tokens", "unknown")]


@pytest.mark.parametrize("page, which", BAD_MODEL_CASES)
def test_every_page_explains_a_bad_model(bad_models, page, which):
    name = "no such model!!" if which == "unknown" else str(bad_models[which])
    prompt = "My words must survive"
    at = open_linked(page, model=name, prompt=prompt)
    assert not at.exception, at.exception
    assert any("could not be loaded" in e.value for e in at.error), _friendly(at)
    assert at.sidebar.text_area[0].value == prompt


def test_pages_with_their_own_model_ignore_a_bad_sidebar_model(bad_models):
    for page in OWN_MODEL:
        at = open_linked(page, model=str(bad_models["corrupt"]), prompt="My words must survive")
        assert not at.exception, at.exception
        assert at.get("plotly_chart") and at.sidebar.text_area[0].value == "My words must survive"


def test_a_bad_model_does_not_break_the_next_session(bad_models):
    broken = open_linked("tokens", model=str(bad_models["corrupt"]))
    assert broken.error and not broken.exception
    fine = open_linked("tokens")
    assert not fine.exception and not fine.error
    assert len(fine.get("plotly_chart")) >= 1


# ---------------------------------------------------------------- the other boxes a user types in

TYPED = {k: ODD_TEXTS[k] for k in ("nul-and-control", "emoji-zwj", "rtl", "html")} | {
    "empty": "", "whitespace": "  \t ", "long": "word " * 5000}


def _no_live_html(at) -> None:
    for block in at.get("html"):
        assert "<script" not in block.proto.body and "<img src=x" not in block.proto.body
    for md in list(at.markdown) + list(at.caption):
        assert "<script" not in md.value or not md.proto.allow_html


@pytest.mark.parametrize("kind", list(TYPED))
def test_embeddings_boxes_take_any_text(kind):
    """The word box, the word-pairs box and the analogy boxes of the Embeddings page."""
    text = TYPED[kind]
    at = open_linked("embeddings")
    at.text_input(key=widget_key("word")).set_value(text[:60]).run()
    assert not at.exception, at.exception
    at.text_area(key="emb_pairs_text_en").set_value(f"{text} , cat\n{text}\ncat, dog").run()
    assert not at.exception, at.exception
    at.text_input(key="emb_an_a_en").set_value(text[:60]).run()
    assert not at.exception, at.exception
    assert at.text_input(key=widget_key("word")).value == text[:60]                 # nothing typed is lost
    assert at.text_area(key="emb_pairs_text_en").value.startswith(text)
    if not text.strip():
        assert _friendly(at), "an empty box should say what to type"
    _no_live_html(at)


@pytest.mark.parametrize("kind", list(TYPED))
def test_compare_prompt_box_takes_any_text(kind):
    text = TYPED[kind]
    at = open_linked("next_token", compare="A second prompt")
    at.text_input(key=widget_key("cmp_prompt")).set_value(text).run()
    assert not at.exception, at.exception
    assert at.text_input(key=widget_key("cmp_prompt")).value == text
    if not text.strip():
        assert _friendly(at)
    _no_live_html(at)


@pytest.mark.parametrize("kind", list(TYPED))
def test_learning_corpus_box_takes_any_text(kind):
    text = TYPED[kind]
    at = open_linked("learning")
    at.radio(key="learn_source").set_value("custom").run()
    at.text_area(key="learn_text").set_value(text).run()
    assert not at.exception, at.exception
    assert at.text_area(key="learn_text").value == text
    assert _friendly(at), "a text too short to learn from should get a message"
    _no_live_html(at)
