"""Real-browser fixtures: one Streamlit server per test session, Debian's Chromium, helpers.

The server runs ``streamlit run app.py`` as a subprocess on a free port in 8620–8649 (``LLM_EXPLAINER_E2E_PORTS=8650-8699``: another range) and uses
the normal user cache (so the converted default model is reused). Its log goes to
``artifacts/e2e-server.log``. Every page opened through :func:`open_app` is checked for
Streamlit exception boxes.

An init script in every browser page records, without touching the app:
- ``window.__runs``: how many times the script state went to "running" (one per rerun);
- ``window.__spinners``: the text of every spinner that appeared (the tracing spinner
  "Running your text through the model…" means the server ran a new forward pass).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from explainer.bench.walk import PENDING_PART
from explainer.registry import PAGES

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
NETGUARD = Path(__file__).resolve().parent / "netguard"
_PORTS = os.environ.get("LLM_EXPLAINER_E2E_PORTS", "8620-8649").split("-")   # several checkouts on one machine
PORTS = range(int(_PORTS[0]), int(_PORTS[-1]) + 1)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOAD_TIMEOUT_MS = 120_000      # first load may convert/load the model on a busy 2-core machine
CHART = "[data-testid='stPlotlyChart']"
ALERT = "[data-testid='stAlert']"
EXCEPTION = "[data-testid='stException']"
SIDEBAR = "[data-testid='stSidebar']"

INIT_SCRIPT = """
(() => {
  window.__runs = 0; window.__spinners = []; window.__state = 'initial';
  const watch = () => {
    const obs = new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'attributes' && r.attributeName === 'data-test-script-state') {
          const s = r.target.getAttribute('data-test-script-state');
          if (s === 'running' && window.__state !== 'running') window.__runs += 1;
          window.__state = s;
        }
        for (const n of r.addedNodes || []) {
          if (!(n instanceof Element)) continue;
          const found = n.matches('[data-testid="stSpinner"]') ? [n]
                      : Array.from(n.querySelectorAll('[data-testid="stSpinner"]'));
          for (const s of found) window.__spinners.push(s.textContent);
        }
      }
      // The app's root may be (re)drawn already running: an added node, no attribute change.
      const app = document.querySelector('[data-test-script-state]');
      const now = app && app.getAttribute('data-test-script-state');
      if (now && now !== window.__state) {
        if (now === 'running') window.__runs += 1;
        window.__state = now;
      }
    });
    obs.observe(document, {subtree: true, childList: true, attributes: true,
                           attributeFilter: ['data-test-script-state']});
  };
  if (document.documentElement) watch(); else document.addEventListener('DOMContentLoaded', watch);
})();
"""


# ---------------------------------------------------------------- pages of the app


def app_pages() -> list[tuple[str, str]]:
    """(file, url path) of every page, from the page registry."""
    return [(p.file, p.slug) for p in PAGES]


def is_stub(file: str) -> bool:
    """A placeholder page that its engineer has not written yet."""
    source = (ROOT / file).read_text(encoding="utf-8")
    return "coming soon" in source.lower() or len(source) < 200


def page_params() -> list:
    """pytest params over every page (every page has landed: none is skipped)."""
    return [pytest.param(slug, id=slug) for _, slug in app_pages()]


# ---------------------------------------------------------------- the server


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        import psutil
        return psutil.Process(self.pid).memory_info().rss

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(log_name: str = "e2e-server.log", network_log: Path | None = None, port: int | None = None,
                 address: str = "127.0.0.1", extra_args: tuple[str, ...] = ()) -> Server:
    """``streamlit run app.py`` on a free port of :data:`PORTS` (or ``port``), offline, ready when healthy.

    With ``network_log``, the server runs exactly as a user starts it (no offline variables,
    no usage-statistics flag: only the app's own settings) under the network guard of
    ``tests/e2e/netguard``, which writes every attempt to leave the machine to that file.
    """
    port = port or _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / log_name
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", address, "--server.fileWatcherType", "none", *extra_args]
    if network_log is None:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        cmd += ["--browser.gatherUsageStats", "false"]
    else:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update(PYTHONUNBUFFERED="1", LLM_EXPLAINER_NETLOG=str(network_log),
                   PYTHONPATH=os.pathsep.join([str(NETGUARD), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("Streamlit did not start:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.3)
    return Server(url, proc, log)


def stop_server(srv: Server) -> None:
    os.killpg(srv.proc.pid, signal.SIGTERM)       # our own process group only
    try:
        srv.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()


@pytest.fixture(scope="session")
def server():
    srv = start_server()
    yield srv
    stop_server(srv)


# ---------------------------------------------------------------- the browser


def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not found:
        pytest.fail("Chromium is missing: run scripts/ensure_chromium.sh")
    return found


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def new_page(browser, **context_args):
    """A page in a fresh context (= a new user / a new Streamlit session)."""
    ctx = browser.new_context(viewport=context_args.pop("viewport", {"width": 1400, "height": 1000}),
                              accept_downloads=True, **context_args)
    ctx.add_init_script(INIT_SCRIPT)
    ctx.set_default_timeout(60_000)
    page = ctx.new_page()
    page.dialogs = []                      # any alert() would be an XSS
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    return page


@pytest.fixture
def page(browser):
    p = new_page(browser)
    yield p
    p.context.close()


# ---------------------------------------------------------------- helpers


def url_for(server: Server, slug: str, query: dict | str | None = None) -> str:
    if isinstance(query, dict):
        query = urlencode(query)
    return f"{server.url}/{slug}" + (f"?{query}" if query else "")


IDLE = """() => (window.__runs > 0 || !!document.querySelector('[data-testid="stMain"] h1'))
  && window.__state === 'notRunning' && !document.querySelector('[data-testid="stSkeleton"]')"""
WHERE = """() => ({runs: window.__runs, state: window.__state, url: location.href,
  connection: document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-connection-state'),
  skeletons: document.querySelectorAll('[data-testid="stSkeleton"]').length,
  title: document.querySelector('[data-testid="stMain"] h1')?.textContent})"""


def wait_idle(page, timeout: int = LOAD_TIMEOUT_MS) -> None:
    """Wait until the script has run at least once (or drew the page's title) and is not running
    now; on a timeout, say where the page was (runs seen, script and connection state, URL) and
    keep a screenshot in ``artifacts/``."""
    try:
        page.wait_for_function(IDLE, timeout=timeout)
    except Exception as err:
        where = page.evaluate(WHERE)
        shot = ARTIFACTS / f"not-idle-{time.time():.0f}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=shot)
        raise AssertionError(f"the page was not idle after {timeout / 1000:.0f} s: {where}; see {shot}") from err


def wait_parts(page, timeout: int = LOAD_TIMEOUT_MS) -> None:
    """Wait until every heavy part of the page has filled in (drawn by the page, not just ready), then idle."""
    page.wait_for_function(f"() => !document.querySelector({json.dumps(PENDING_PART)})", timeout=timeout)
    wait_idle(page, timeout)


def rerun(page, action, timeout: int = LOAD_TIMEOUT_MS) -> None:
    """Do ``action`` (a widget change) and wait for the rerun it causes to finish."""
    before = page.evaluate("window.__runs")
    action()
    page.wait_for_function(f"() => window.__runs > {before} && window.__state === 'notRunning'", timeout=timeout)


def assert_no_exception(page) -> None:
    boxes = page.locator(EXCEPTION)
    if boxes.count():
        raise AssertionError("Streamlit exception on the page:\n" + boxes.first.inner_text()[:3000])
    assert not page.dialogs, f"a JavaScript dialog opened: {page.dialogs}"


def open_app(page, server: Server, slug: str, query: dict | str | None = None,
             expect: str = "chart") -> None:
    """Open ``/<slug>?<query>``; wait for a chart (``expect='chart'``) or a friendly message
    (``'alert'``) or either (``'any'``); fail on any exception box."""
    page.goto(url_for(server, slug, query))
    wait_idle(page)
    selector = {"chart": CHART, "alert": ALERT, "any": f"{CHART}, {ALERT}"}[expect]
    try:
        page.wait_for_selector(selector, timeout=30_000)
    except Exception:
        assert_no_exception(page)
        raise
    assert_no_exception(page)


def sidebar_prompt(page):
    return page.locator(f"{SIDEBAR} textarea").first


def title_text(page) -> str:
    return page.locator("h1").first.inner_text()


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
