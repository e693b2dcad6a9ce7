"""The short-link store: long texts on disk under their hash (explainer.shortlinks)."""
from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

from explainer import shortlinks
from explainer.shortlinks import (KEY_CHARS, MAX_TEXT_BYTES, MAX_TEXT_CHARS, BadKey, DamagedText, ShortLinkStore,
                                  TextTooLarge, UnknownKey, key_of)

LONG_EN = "The capital of France is Paris. " * 200             # 6,400 characters: too long for a URL
LONG_ZH = "法国的首都是巴黎。德国的首都是柏林。" * 300              # 5,400 characters, 3 bytes each


@pytest.fixture
def store(tmp_path) -> ShortLinkStore:
    return ShortLinkStore(tmp_path / "links")


@pytest.mark.parametrize("text", [LONG_EN, LONG_ZH, "emoji 🐱🚀 and a NUL \x00 and \r\n line ends",
                                  "x" * MAX_TEXT_CHARS, "🐱" * MAX_TEXT_CHARS])
def test_round_trip(store, text):
    key = store.save(text)
    assert len(key) == KEY_CHARS and set(key) <= set("0123456789abcdef")
    assert key == key_of(text)
    assert store.load(key) == text
    assert store.load(key.upper()) == text                   # a key typed in capitals still works
    assert store.save(text) == key                          # saving again changes nothing
    assert len(list(store.root.glob("*.txt"))) == 1


def test_texts_survive_a_restart(store):
    key = store.save(LONG_ZH)
    assert ShortLinkStore(store.root).load(key) == LONG_ZH  # a new process finds it on disk


def test_different_texts_get_different_keys(store):
    keys = {store.save(LONG_EN + str(i)) for i in range(50)}
    assert len(keys) == 50


@pytest.mark.parametrize("key", ["", "abc", "0" * (KEY_CHARS - 1), "0" * (KEY_CHARS + 1), "g" * KEY_CHARS,
                                 "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "0" * 10 + "/" + "0" * 9,
                                 "<script>alert(1)</script>", "x" * 5000, None, 12345])
def test_bad_keys_are_refused(store, key):
    with pytest.raises(BadKey) as info:
        store.load(key)
    assert info.value.reason == "malformed"


def test_unknown_key(store):
    with pytest.raises(UnknownKey) as info:
        store.load(key_of("never stored"))
    assert info.value.reason == "unknown"


def test_edited_file_is_refused_and_saving_heals_it(store):
    key = store.save(LONG_EN)
    path = store.root / f"{key}.txt"
    path.write_bytes(path.read_bytes().replace(b"Paris", b"Rome!"))        # same size, other text
    with pytest.raises(DamagedText) as info:
        store.load(key)
    assert info.value.reason == "damaged"
    assert store.save(LONG_EN) == key                                       # the owner saves it again
    assert store.load(key) == LONG_EN


def test_truncated_and_non_utf8_files_are_refused(store):
    key = store.save(LONG_ZH)
    path = store.root / f"{key}.txt"
    path.write_bytes(path.read_bytes()[:-1])                               # half a character missing
    with pytest.raises(DamagedText):
        store.load(key)
    junk = b"\xff\xfe\xfd not utf-8"
    odd_key = __import__("hashlib").sha256(junk).hexdigest()[:KEY_CHARS]
    (store.root / f"{odd_key}.txt").write_bytes(junk)                       # the hash matches, the bytes are not text
    with pytest.raises(DamagedText):
        store.load(odd_key)


def test_size_limits(store):
    with pytest.raises(TextTooLarge):
        store.save("x" * (MAX_TEXT_CHARS + 1))
    assert not store.root.exists() or not list(store.root.glob("*.txt")), "a refused text was written"
    huge_key = "0" * KEY_CHARS
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / f"{huge_key}.txt", "wb") as fh:                 # a file too big for any text
        fh.truncate(MAX_TEXT_BYTES + 1)
    with pytest.raises(TextTooLarge) as info:
        store.load(huge_key)
    assert info.value.reason == "too_large"
    with pytest.raises(TypeError):
        store.save(b"bytes are not text")                                   # type: ignore[arg-type]


def test_a_folder_under_a_key_is_unknown_not_a_crash(store):
    key = key_of("folder")
    (store.root / f"{key}.txt").mkdir(parents=True)
    with pytest.raises(UnknownKey):
        store.load(key)


def test_store_forgets_the_least_recently_used(tmp_path):
    store = ShortLinkStore(tmp_path, max_files=3)
    keys = []
    for i in range(3):
        keys.append(store.save(f"text {i} " * 600))
        os.utime(tmp_path / f"{keys[-1]}.txt", (time.time() - 100 + i, time.time() - 100 + i))
    store.load(keys[0])                                     # used just now: kept
    keys.append(store.save("text 3 " * 600))
    remaining = {p.stem for p in tmp_path.glob("*.txt")}
    assert remaining == {keys[0], keys[2], keys[3]}         # text 1 was the least recently used
    with pytest.raises(UnknownKey):
        store.load(keys[1])


def test_store_is_bounded_in_bytes(tmp_path):
    store = ShortLinkStore(tmp_path, max_bytes=20_000)
    for i in range(10):
        store.save(f"{i}" * 5_000)
    assert sum(p.stat().st_size for p in tmp_path.glob("*.txt")) <= 20_000
    assert store.load(key_of("9" * 5_000)) == "9" * 5_000   # the newest is always kept


def test_concurrent_writers_in_threads(store):
    texts = [LONG_EN, LONG_ZH] + [f"{i} " * 3_000 for i in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def write(text: str) -> None:
        try:
            barrier.wait()
            for _ in range(20):
                assert store.load(store.save(text)) == text
        except BaseException as err:                        # collected for the assert below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(texts[i % len(texts)],)) for i in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert {p.stem for p in store.root.glob("*.txt")} == {key_of(t) for t in texts}
    assert not list(store.root.glob(".*.tmp")), "temporary files left behind"


def _write_in_process(root: str, text: str, rounds: int) -> None:
    store = ShortLinkStore(root)
    for _ in range(rounds):
        assert store.load(store.save(text)) == text


def test_concurrent_writers_in_processes(store):
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")   # fork: no re-import of torch
    procs = [ctx.Process(target=_write_in_process, args=(str(store.root), text, 30))
             for text in (LONG_ZH, LONG_ZH, LONG_EN)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    assert store.load(key_of(LONG_ZH)) == LONG_ZH and store.load(key_of(LONG_EN)) == LONG_EN
    assert not list(store.root.glob(".*.tmp"))


def test_default_store_lives_in_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_EXPLAINER_CACHE", str(tmp_path))
    key = shortlinks.save(LONG_ZH)
    assert (tmp_path / "shortlinks" / f"{key}.txt").is_file()
    assert shortlinks.load(key) == LONG_ZH
