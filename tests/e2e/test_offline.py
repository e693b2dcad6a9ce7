"""Offline: using every page sends no request off the machine, from the browser or the server."""
from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import (ARTIFACTS, NETGUARD, app_pages, new_page, open_app, start_server,
                                stop_server)

pytestmark = pytest.mark.slow
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _guarded_env(log) -> dict:
    return dict(os.environ, LLM_EXPLAINER_NETLOG=str(log), PYTHONPATH=str(NETGUARD))


def test_the_network_guard_catches_a_request(tmp_path):
    """Positive control: under the guard, a request to another host is refused and written down."""
    log = tmp_path / "net.log"
    code = ("import urllib.request\n"
            "try:\n    urllib.request.urlopen('http://example.com/', timeout=5)\nexcept OSError as e:\n"
            "    print('refused', e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=_guarded_env(log), capture_output=True,
                         text=True, timeout=60)
    assert "refused" in out.stdout, out
    assert "example.com" in log.read_text()


def test_every_page_works_with_no_request_leaving_the_machine(browser):
    """A server started as a user starts it (only the app's own config) under the guard; a browser
    visits every page in both languages. Neither the browser nor the server reaches any other host."""
    log = ARTIFACTS / "e2e-network.log"
    log.unlink(missing_ok=True)
    srv = start_server("e2e-offline-server.log", network_log=log)
    page = new_page(browser)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        for _, slug in app_pages():
            for lang in ("en", "zh"):
                open_app(page, srv, slug, {"lang": lang} if lang == "zh" else None, expect="any")
    finally:
        page.context.close()
        stop_server(srv)
    hosts = {urlparse(u).hostname for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    print(f"\n{len(requests)} browser requests, to hosts {sorted(h for h in hosts if h)}")
    assert len(requests) > 20, "the browser made suspiciously few requests (positive control)"
    assert hosts <= LOCAL_HOSTS, f"the browser reached other hosts: {hosts - LOCAL_HOSTS}"
    leaked = log.read_text() if log.exists() else ""
    assert not leaked, f"the server tried to reach the network:\n{leaked[:3000]}"
