"""Two Streamlit front ends behind HAProxy (scripts/front_ends.sh), in Chromium: stickiness by cookie,
not by address; when a user's front end dies, the user lands on the other and the URL rebuilds the
view, a long text included (its short link lives in the shared cache folder)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass

import pytest
import requests

from tests.e2e.conftest import ROOT, assert_no_exception, new_page, open_app, rerun, sidebar_prompt, title_text
from tests.e2e.stage_tools import connection_state, main_slider, settle

pytestmark = pytest.mark.slow
PORT = 8800
LONG = ("The residual stream carries what every layer wrote, and the next layer reads it. " * 60)[:4_400]


@dataclass
class Hall:
    url: str
    proc: subprocess.Popen
    pids: dict[str, int]                  # front end name (its SERVERID cookie) → process id


def start_hall() -> Hall:
    proc = subprocess.Popen([str(ROOT / "scripts" / "front_ends.sh"), str(PORT), "2"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, ADDRESS="127.0.0.1"))
    pids, deadline = {}, time.time() + 240
    for line in proc.stdout:
        found = re.match(r"front end (\d+): .*\(pid (\d+)", line)
        if found:
            pids[f"fe{found.group(1)}"] = int(found.group(2))
        if line.startswith("HAProxy:") or time.time() > deadline:
            break
    assert len(pids) == 2 and proc.poll() is None, "front ends did not start"
    return Hall(f"http://127.0.0.1:{PORT}", proc, pids)


def stop_hall(hall: Hall) -> None:
    os.killpg(hall.proc.pid, signal.SIGTERM)                  # the script's own process group only
    try:
        hall.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(hall.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def hall():
    found = start_hall()
    yield found
    stop_hall(found)


def served_by(url: str, cookie: str | None = None) -> str:
    reply = requests.get(url + "/_stcore/health", cookies={"SERVERID": cookie} if cookie else None, timeout=10)
    return reply.headers["X-Front-End"]


def test_stickiness_is_by_cookie_not_by_address(hall):
    fresh = [served_by(hall.url) for _ in range(6)]               # one address, no cookie: spread out
    assert set(fresh) == {"fe1", "fe2"}
    assert {served_by(hall.url, "fe2") for _ in range(6)} == {"fe2"}  # the same address, a cookie: kept
    assert {served_by(hall.url, "fe1") for _ in range(6)} == {"fe1"}


def _view(page) -> dict:
    return {"title": title_text(page), "layer": main_slider(page, "Layer").input_value(),
            "prompt": sidebar_prompt(page).input_value(), "query": page.url.split("?", 1)[1]}


def _front_end(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "SERVERID")


def test_a_dead_front_end_sends_its_users_to_the_other_with_their_view(browser, hall):
    page = new_page(browser)
    other_user = new_page(browser)
    try:
        open_app(page, hall, "attention", {"layer": 6})
        box = sidebar_prompt(page)
        rerun(page, lambda: (box.fill(LONG), box.press("Control+Enter")))
        page.wait_for_function("() => location.search.includes('prompt_ref=')")
        settle(page, 1.0)
        before, mine = _view(page), _front_end(page)
        assert before["layer"] == "6" and before["prompt"] == LONG and "prompt=" not in before["query"]
        runs = page.evaluate("window.__runs")
        os.kill(hall.pids[mine], signal.SIGKILL)                  # this user's front end dies
        page.wait_for_function(f"() => window.__runs > {runs} && window.__state === 'notRunning'", timeout=180_000)
        page.wait_for_selector("[data-testid='stPlotlyChart']", timeout=120_000)
        settle(page, 1.0)
        after = _view(page)
        assert connection_state(page) == "CONNECTED" and _front_end(page) != mine
        assert after == before                                    # the same view, the long text from the short link
        assert_no_exception(page)
        other_user.goto(page.url)                                 # the link still works for anyone
        other_user.wait_for_selector("[data-testid='stPlotlyChart']", timeout=120_000)
        settle(other_user, 1.0)
        assert _view(other_user) == after and _front_end(other_user) != mine
    finally:
        page.context.close()
        other_user.context.close()
