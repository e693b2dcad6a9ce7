"""Pages on a shared server: a model list, models sized first, the heavy work on a cluster (a plain
HTTP stand-in here; tests/integration/test_serving_cluster.py runs a real one)."""
from __future__ import annotations

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

import explainer
from explainer.jobs import runner
from explainer.serving import client
from explainer.serving.remote import busy_seconds
from explainer.ui.frame import background
from explainer.ui.tools.apptest import settle_jobs
from explainer.serving.worker import Worker
from explainer.ui.frame.binding import widget_key
from tests.app.conftest import APP, open_page
from tests.serving_helpers import big_model_folder, fake_cluster


@pytest.fixture(scope="module")
def smollm2_worker():
    return Worker(explainer.load_model())


@pytest.mark.parametrize("lang, words", [("en", "offers only smollm2-135m"), ("zh", "只提供 smollm2-135m")])
def test_a_link_to_a_model_not_offered_reads_with_an_offered_one(monkeypatch, lang, words):
    monkeypatch.setenv("LLM_EXPLAINER_MODELS", "smollm2-135m")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"model": "/etc", "lang": lang})
    at.run()                                                               # the link's first page
    assert not at.exception and at.get("plotly_chart")
    assert any(words in w.value and "/etc" in w.value for w in at.warning)
    box = at.sidebar.selectbox(key=widget_key("model_choice"))
    assert box.value == "smollm2-135m" and len(box.options) == 2           # and the untrained model; no box to type
    assert "model" not in at.query_params


def test_a_model_too_large_is_refused_with_a_message(monkeypatch, tmp_path):
    folder = big_model_folder(tmp_path / "big")
    monkeypatch.setenv("LLM_EXPLAINER_MODEL_GB", "8")
    at = open_page("tokens", lang="zh", query={"model": str(folder)})
    assert not at.exception and not at.get("plotly_chart")
    assert any("太大" in e.value and "25.1 GB" in e.value and "8.0 GB" in e.value for e in at.error)


def test_why_this_answer_with_its_heavy_work_on_the_cluster(monkeypatch, smollm2_worker):
    with fake_cluster(smollm2_worker) as (url, cluster):
        monkeypatch.setenv("LLM_EXPLAINER_BACKEND", url)
        at = open_page("why", prompt="The Eiffel Tower is in the city of", method="gradient_x_input")
    assert not at.exception and len(at.get("plotly_chart")) >= 3
    ops = [r["op"].rpartition(":")[2] for r in cluster.seen]
    assert ops[0] == "trace" and "attribute_ids" in ops


def test_a_cluster_that_stays_full_is_said_so_on_the_page(monkeypatch, smollm2_worker):
    monkeypatch.setattr(client, "BUSY_WAIT_S", 3.0)
    with fake_cluster(smollm2_worker) as (url, cluster):
        monkeypatch.setenv("LLM_EXPLAINER_BACKEND", url)
        cluster.faults = [("busy", 1), ("busy", 30)]
        at = open_page("tokens", lang="zh", prompt="一个新句子，没人读过")
    assert not at.exception and not at.get("plotly_chart")
    assert [w.value for w in at.warning if "服务器的工作进程没有应答" in w.value]
    assert not [w for w in at.warning if "秒后重试" in w.value]             # the countdown is taken down


def test_a_heavy_part_waiting_on_a_full_cluster_says_busy_on_its_line(monkeypatch, smollm2_worker):
    gate = threading.Event()
    monkeypatch.setattr(client, "_sleep", lambda seconds: gate.wait(60))     # the countdown holds until the gate opens
    prompt = "一个新句子，没人读过，要解释"
    with fake_cluster(smollm2_worker) as (url, cluster):
        monkeypatch.setenv("LLM_EXPLAINER_BACKEND", url)
        open_page("why", lang="zh", model="smollm2-135m", prompt=prompt, method="gradient_x_input")   # traced there
        cluster.faults = [("busy", 7)]
        at = open_page("why", lang="zh", model="smollm2-135m", prompt=prompt, method="occlusion", settle=False)
        key = background.waiting_for(at.session_state)["why.inputs"]
        deadline = time.monotonic() + 30
        while busy_seconds(getattr(runner().poll(key), "message", "")) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        at.run()
        lines = [p.proto.text for p in at.get("progress")]
        assert any("繁忙 — 7 秒后重试" in line for line in lines), lines
        gate.set()
        settle_jobs(at)
    assert not at.exception and runner().poll(key).state == "done"
    assert not [p for p in at.get("progress") if "秒后重试" in p.proto.text]
    assert [r["op"].rpartition(":")[2] for r in cluster.seen][-1] == "attribute_ids"
