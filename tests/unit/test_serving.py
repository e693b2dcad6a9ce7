"""The serving tier without Ray: wire format, the switch, retries, refusals (a plain HTTP stand-in)."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import explainer
from explainer.analysis import attention as att
from explainer.analysis import generation as gen
from explainer.analysis import attribution_inputs as ai
from explainer.analysis import attribution_paths as paths
from explainer.analysis.attribution_inputs import forget, input_attribution
from explainer.budget import TooLarge
from explainer.serving import client, wire
from explainer.jobs import Cancelled
from explainer.serving.remote import busy_seconds, remotable, revision, route
from explainer.serving.worker import Worker
from tests.serving_helpers import fake_cluster

BACKEND = "LLM_EXPLAINER_BACKEND"


def close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> bool:
    return float((a - b).abs().max()) <= rel * max(float(b.abs().max()), 1e-12)


@pytest.fixture
def no_waiting(monkeypatch):
    waits = []
    monkeypatch.setattr(client, "_sleep", waits.append)
    return waits


# ---------------------------------------------------------------- the wire format


def test_values_and_arrays_make_the_round_trip_exactly():
    scores = np.array([0.0, 1.5, np.nan, -np.inf])
    scores.setflags(write=False)
    value = {"ids": [1, 2, 3], ("pair", 7): frozenset({(1, 2)}), "bytes": b"\xe7\x8c", "none": None,
             "x": torch.arange(6, dtype=torch.float32).reshape(2, 3), "pos": torch.tensor([5, 2]),
             "mask": torch.tensor([True, False]), "scores": scores, "f": float("nan"), "flag": True,
             "step": gen.GenerationSettings(greedy=False, temperature=0.7, top_k=5)}
    back, request_id = wire.decode_result(wire.encode_result(value, "r-1"))
    assert request_id == "r-1" and set(back) == set(value)
    assert back["x"].dtype == torch.float32 and torch.equal(back["x"], value["x"])
    assert back["pos"].dtype == torch.int64 and back["mask"].dtype == torch.bool
    assert np.array_equal(back["scores"], scores, equal_nan=True) and not back["scores"].flags.writeable
    assert back[("pair", 7)] == frozenset({(1, 2)}) and back["bytes"] == b"\xe7\x8c"
    assert back["step"] == value["step"] and np.isnan(back["f"]) and back["flag"] is True


def test_a_result_is_a_safetensors_file_with_json_metadata_never_pickle():
    body = wire.encode_result({"x": torch.ones(3)})
    header = json.loads(body[8:8 + int.from_bytes(body[:8], "little")])
    assert header["x" if "x" in header else "0"]["dtype"] == "F32"
    assert json.loads(header["__metadata__"]["json"]) == {"$d": [["x", {"$T": "0"}]]}
    source = "".join(open(m.__file__).read() for m in (wire, client))
    assert "pickle" not in source.replace("never pickle", "")


def test_only_the_librarys_own_dataclasses_travel():
    @dataclasses.dataclass(frozen=True)
    class Foreign:
        x: int = 1

    with pytest.raises(wire.WireError, match="may not travel"):
        wire.encode_result(Foreign())
    forged = {"$c": "os:system", "f": {}}
    with pytest.raises(wire.WireError, match="may not travel"):
        wire.unpack(forged)


def test_arrays_in_a_request_travel_inline_numbers_only_and_as_large_as_they_say():
    scores = np.array([0.25, -1.0, np.nan])
    scores.setflags(write=False)
    sent = {"op": "refine", "scores": scores, "x": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    got = wire.decode_request(wire.encode_request(sent))
    assert np.array_equal(got["scores"], scores, equal_nan=True) and not got["scores"].flags.writeable
    assert got["x"].dtype == torch.float32 and torch.equal(got["x"], sent["x"])
    with pytest.raises(wire.WireError, match="cannot travel in a request"):
        wire.encode_request({"op": "x", "a": np.array(["text"], dtype=object)})
    body = json.loads(wire.encode_request({"op": "x", "a": np.zeros(4)}))
    body["$d"][1][1]["$A"]["shape"] = [5]                                # says more than it holds
    with pytest.raises(wire.WireError, match="does not hold what its shape says"):
        wire.decode_request(json.dumps(body).encode())
    body["$d"][1][1]["$A"].update(shape=[4], dtype="object")
    with pytest.raises(wire.WireError, match="not in this format"):
        wire.decode_request(json.dumps(body).encode())


def test_bad_request_bodies_are_refused_with_a_reason():
    for body, reason in ((b"\x80\x04K\x01.", "not valid JSON"), (b"[1, 2]", "no operation"),
                         (b" " * (wire.MAX_REQUEST_BYTES + 1), "at most")):
        with pytest.raises(wire.WireError, match=reason):
            wire.decode_request(body)


# ---------------------------------------------------------------- the switch


def test_remote_traces_and_analyses_equal_in_process_ones(tiny_model, monkeypatch):
    text = "The cat sat on the mat. The cat"
    here = explainer.trace(tiny_model, text, ablate_heads=[(1, 0)])
    with fake_cluster(Worker(tiny_model)) as (url, cluster):
        monkeypatch.setenv(BACKEND, url)
        there = explainer.trace(tiny_model, text, ablate_heads=[(1, 0)])
        monkeypatch.setattr(att, "REMOTE_FROM", 0)
        stats_there = att.head_stats(there)
        monkeypatch.delenv(BACKEND)
    assert [r["op"] for r in cluster.seen][:2] == ["trace", "explainer.analysis.attention:head_stats"]
    assert there.tokens == here.tokens and there.ablated_heads == here.ablated_heads
    assert close(there.residual, here.residual) and close(there.next_token_logits, here.next_token_logits)
    for a, b in zip(there.write_norms() + there.mlp_peaks(), here.write_norms() + here.mlp_peaks()):
        assert a.dtype == b.dtype and close(a.double(), b.double())
    assert close(there.attention(1), here.attention(1))               # recomputed here, from the stream
    stats_here = att.head_stats(here)
    for name in att.STATS:
        assert np.allclose(stats_there.get(name), stats_here.get(name), rtol=1e-5, equal_nan=True)


def test_attribution_and_generation_come_back_equal(tiny_llama, monkeypatch):
    text = "The capital of France is"
    settings = gen.GenerationSettings(greedy=False, temperature=0.8, top_k=20)
    forget(tiny_llama)
    here = input_attribution(tiny_llama, text, method="gradient_x_input")
    steps_here = gen.generate(tiny_llama, text, 3, settings, seed=4)
    forget(tiny_llama)
    with fake_cluster(Worker(tiny_llama)) as (url, cluster):
        monkeypatch.setenv(BACKEND, url)
        there = input_attribution(tiny_llama, text, method="gradient_x_input")
        steps_there = gen.generate(tiny_llama, text, 3, settings, seed=4)
        monkeypatch.delenv(BACKEND)
    forget(tiny_llama)
    assert sum(r["op"].endswith(":generate_step") for r in cluster.seen) == 3
    assert there.tokens == here.tokens and there.target == here.target and there.pieces == here.pieces
    assert np.allclose(there.scores, here.scores, rtol=1e-5, atol=1e-9) and not there.scores.flags.writeable
    assert steps_there == steps_here


def test_a_refined_attribution_is_continued_on_the_cluster_as_here(tiny_llama, monkeypatch):
    monkeypatch.setattr(paths, "TOLERANCE", 0.0)                           # never complete: the points cap stops it
    monkeypatch.setattr(ai, "MAX_STEPS", 96)
    monkeypatch.setattr(paths, "time", SimpleNamespace(monotonic=lambda: 0.0))   # no time passes: no budget runs out
    text = "The capital of France is"
    first = input_attribution(tiny_llama, text, budget_s=0.0)              # the first round only (32 points)
    here = input_attribution(tiny_llama, text, budget_s=1.0, refine=first)
    with fake_cluster(Worker(tiny_llama)) as (url, cluster):
        monkeypatch.setenv(BACKEND, url)
        there = input_attribution(tiny_llama, text, budget_s=1.0, refine=first)
        monkeypatch.delenv(BACKEND)
    forget(tiny_llama)
    assert [r["op"].rpartition(":")[2] for r in cluster.seen] == ["attribute_ids"]
    assert first.steps == 32 and here.steps == there.steps == 96 and there.stopped == "points"
    assert [(s.start, s.stop) for s in there.path.segments] == [(s.start, s.stop) for s in here.path.segments]
    assert np.allclose(there.scores, here.scores, rtol=1e-5, atol=1e-9)


def test_a_job_waiting_on_a_full_cluster_says_so_and_stops_once_nobody_waits(tiny_llama, monkeypatch, no_waiting):
    ids = [1, 5, 9, 12]
    heard: list[tuple[float, str]] = []
    with fake_cluster(Worker(tiny_llama)) as (url, cluster):
        monkeypatch.setenv(BACKEND, url)
        cluster.faults = [("busy", 2)]
        got = ai.attribute_ids(tiny_llama, ids, None, "gradient_x_input", None, lambda f, m: heard.append((f, m)))
        assert got.token_ids == tuple(ids)
        assert [busy_seconds(m) for _, m in heard] == [2, 1, None] and heard[-1] == (0.0, "")

        def unwanted(fraction: float, message: str) -> None:
            raise Cancelled("nobody waits")
        cluster.faults = [("busy", 30)]
        with pytest.raises(Cancelled):
            ai.attribute_ids(tiny_llama, ids, None, "gradient_x_input", None, unwanted)
        monkeypatch.delenv(BACKEND)
    assert cluster.attempts == 3 and len(cluster.seen) == 1                # the abandoned one was not sent again


def test_unset_the_library_never_imports_ray_or_http():
    code = ("import sys, explainer; m = explainer.load_model('random-gpt2'); explainer.trace(m, 'hi there');"
            "from explainer.analysis import attention, generation, attribution_inputs;"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'ray' or n == 'explainer.serving.client'))")
    env = {k: v for k, v in __import__("os").environ.items() if k != BACKEND}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@remotable
def stream_norms(model, trace, layer: int) -> torch.Tensor:
    """An analysis joins the cluster with one line: the decorator above."""
    return trace.stream(layer).norm(dim=-1)                                  # (T,)


def test_one_line_sends_any_analysis_with_traces_among_its_arguments(tiny_qwen3, monkeypatch):
    here = explainer.trace(tiny_qwen3, "one line is enough", ablate_mlps=[0])
    with fake_cluster(Worker(tiny_qwen3)) as (url, cluster):
        monkeypatch.setenv(BACKEND, url)
        there = stream_norms(tiny_qwen3, here, 2)
        monkeypatch.delenv(BACKEND)
    assert [r["op"] for r in cluster.seen] == [stream_norms.op]
    assert cluster.seen[0]["arguments"]["trace"].ablate_mlps == (0,)
    assert close(there, stream_norms(tiny_qwen3, here, 2))


# ---------------------------------------------------------------- retries and errors


def test_a_request_lost_with_a_worker_is_retried_with_backoff(tiny_gpt2, monkeypatch, no_waiting):
    with fake_cluster(Worker(tiny_gpt2)) as (url, cluster):
        monkeypatch.setenv(BACKEND, url)
        cluster.faults = [("lost", 2), ("drop", 1)]
        t = explainer.trace(tiny_gpt2, "lost and found")
        assert t.n_tokens == 3 and cluster.attempts == 4
        assert len(no_waiting) == 3 and no_waiting[0] < no_waiting[1] < no_waiting[2]    # backing off
        cluster.faults = [("lost", client.RETRIES + 1)]
        with pytest.raises(client.Unreachable, match="failed 5 times"):
            explainer.trace(tiny_gpt2, "lost for good")


def test_a_full_cluster_is_waited_for_and_the_wait_is_told(tiny_gpt2, monkeypatch, no_waiting):
    heard = []
    with fake_cluster(Worker(tiny_gpt2)) as (url, cluster), client.on_busy(heard.append):
        monkeypatch.setenv(BACKEND, url)
        cluster.faults = [("busy", 3), ("busy", 1)]
        assert explainer.trace(tiny_gpt2, "wait for it").n_tokens == 3
        assert heard == [3, 2, 1, 1, 0] and [w for w in no_waiting if w == 1.0] == [1.0] * 4
        assert len(no_waiting) == 6 and all(w < 0.5 for w in no_waiting if w != 1.0)   # a little jitter
        heard.clear()
        monkeypatch.setattr(client, "BUSY_WAIT_S", 2.0)
        cluster.faults = [("busy", 30)]
        with pytest.raises(client.Busy, match="full"):
            explainer.trace(tiny_gpt2, "too long a wait")
        assert heard == [0]                                          # the notice is taken down


def test_errors_come_back_as_the_errors_raised_in_process(tiny_gpt2, monkeypatch):
    worker = Worker(tiny_gpt2)
    with fake_cluster(worker) as (url, cluster):
        base = {"model": tiny_gpt2.name, "revision": revision(tiny_gpt2)}
        post = lambda **kw: client.post(f"{url}/{route(tiny_gpt2.name)}", {**base, **kw})  # noqa: E731
        with pytest.raises(ValueError, match="token ids"):
            post(op="trace", token_ids=[10**9])
        with pytest.raises(client.NotServed, match="no analysis"):
            post(op="os:system")
        with pytest.raises(client.NotServed, match="another revision"):
            client.post(f"{url}/{route(tiny_gpt2.name)}", {**base, "revision": "0" * 16, "op": "trace"})
        monkeypatch.setenv("LLM_EXPLAINER_MEMORY_GB", "0.00001")
        with pytest.raises(TooLarge, match="more than"):
            post(op="trace", token_ids=list(range(100)))
        monkeypatch.delenv("LLM_EXPLAINER_MEMORY_GB")
        assert worker.served == 3 and post(op="trace", token_ids=[5, 6])["residual"].shape == (3, 2, 32)


def test_a_patching_sweep_runs_on_the_cluster_as_here_and_its_refusals_come_back_whole(tiny_llama, monkeypatch):
    from explainer.analysis import patching
    from explainer.serving.worker import error_reply

    clean, corrupted = "The cat sat on the mat because the cat", "The dog sat on the mat because the dog"
    patching.forget(tiny_llama)
    here = patching.activation_patching(tiny_llama, clean, corrupted, "all")
    patching.forget(tiny_llama)
    with fake_cluster(Worker(tiny_llama)) as (url, cluster):
        monkeypatch.setenv(BACKEND, url)
        there = patching.activation_patching(tiny_llama, clean, corrupted, "all")
        base = {"model": tiny_llama.name, "revision": revision(tiny_llama), "op": patching.patch_ids.op}
        with pytest.raises(ValueError, match="same length"):                # a worker checks what anyone sends
            client.post(f"{url}/{route(tiny_llama.name)}", {**base, "arguments": {
                "clean_ids": [1, 2, 3], "corrupted_ids": [1, 2], "sites": ("heads",), "answer": None,
                "contrast": None, "progress": None, "texts": ("a", "b")}})
        monkeypatch.delenv(BACKEND)
    patching.forget(tiny_llama)
    assert [r["op"].rpartition(":")[2] for r in cluster.seen][0] == "patch_ids"
    assert set(there) == set(here) == set(patching.SITES)
    for site in patching.SITES:
        assert np.allclose(there[site].diffs, here[site].diffs, rtol=1e-5, atol=1e-6)
        assert there[site].tokens == here[site].tokens and there[site].answer == here[site].answer
    refusal = patching.PatchingError("no gap", "lengths", counts=(3, 4), parts=(("a",), ("b", "c")))
    back = client._as_exception(json.loads(error_reply(refusal, "r").body), None)
    assert type(back) is patching.PatchingError and str(back) == "no gap"
    assert (back.reason, back.counts, back.parts) == ("lengths", (3, 4), (("a",), ("b", "c")))
