"""The room's link: which address goes in it, its query, its QR code (explainer.ui.stage.links)."""
from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from explainer.ui.stage import links
from explainer.ui.stage.links import Origin, parse_host_header, parse_url, qr_png, reachable_origin, shared_query


@pytest.mark.parametrize("url, expected", [
    ("http://192.168.1.20:8501/attention", Origin("http", "192.168.1.20", 8501, "/attention")),
    ("https://explainer.school.example/", Origin("https", "explainer.school.example", None, "/")),
    ("http://teacher-laptop.local:8501", Origin("http", "teacher-laptop.local", 8501, "/")),
    ("http://[fe80::1]:8501/tokens", Origin("http", "fe80::1", 8501, "/tokens")),
    ("http://ROOM-PC:8501/llm/next_token", Origin("http", "room-pc", 8501, "/llm/next_token")),
])
def test_parse_url_accepts_web_addresses(url, expected):
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", [
    None, "", 42, "javascript:alert(1)", "ftp://host/", "http://", "http://user:pw@host/", "http://host:99999/",
    "http://exa mple.com/", "http://<script>/", "http://host/<script>", "http://under_score.example/",
    "http://" + "a" * 300 + ".com/", "http://[::1/", "http://host/" + "x" * 3000, "http://host/\n",
])
def test_parse_url_refuses_odd_addresses(url):
    assert parse_url(url) is None


def test_parse_host_header():
    assert parse_host_header("10.0.0.5:8501") == Origin("http", "10.0.0.5", 8501, "/")
    assert parse_host_header("[::1]:8501") == Origin("http", "::1", 8501, "/")
    for odd in ("evil.example/path", "a@b", "", None, "x" * 400, "host:port", "two words"):
        assert parse_host_header(odd) is None, odd


@pytest.mark.parametrize("host, loop", [("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True),
                                        ("127.5.0.9", True), ("::1", True), ("0.0.0.0", True), ("app.localhost", True),
                                        ("192.168.0.4", False), ("10.1.2.3", False), ("school.example", False)])
def test_is_loopback(host, loop):
    assert links.is_loopback(host) is loop


def test_the_host_the_browser_used_is_kept():
    reach = reachable_origin("http://192.168.1.20:8501/attention", "ignored:1", None, lan=lambda: ["10.9.9.9"])
    assert reach.origin == Origin("http", "192.168.1.20", 8501, "/attention")
    assert reach.notes == ()


def test_a_loopback_host_becomes_this_computers_network_address():
    reach = reachable_origin("http://localhost:8501/layers", None, "0.0.0.0", lan=lambda: ["192.168.1.7", "10.0.0.2"])
    assert reach.origin.link({"layer": "3"}) == "http://192.168.1.7:8501/layers?layer=3"
    assert reach.notes == (("share_localhost", {"host": "localhost", "ip": "192.168.1.7"}),)


def test_no_network_at_all_says_so():
    reach = reachable_origin("http://127.0.0.1:8501/", None, None, lan=lambda: [])
    assert reach.origin.host == "127.0.0.1"
    assert [key for key, _ in reach.notes] == ["share_no_network"]


def test_a_server_listening_only_locally_is_reported():
    reach = reachable_origin("http://127.0.0.1:8501/", None, "127.0.0.1", lan=lambda: ["192.168.1.7"])
    assert [key for key, _ in reach.notes] == ["share_localhost", "share_loopback_only"]


def test_an_odd_browser_url_falls_back_to_the_host_header_with_a_notice():
    reach = reachable_origin("http://[evil](javascript:x)/", "192.168.3.3:8501", None, lan=lambda: [])
    assert reach.origin == Origin("http", "192.168.3.3", 8501, "/")
    (key, fields), = reach.notes
    assert key == "share_odd_host" and fields["used"] == "192.168.3.3:8501"
    assert "\\[" in fields["host"] and "\\(" in fields["host"]        # quoted safely inside Markdown


def test_nothing_known_falls_back_to_localhost_with_a_notice():
    reach = reachable_origin(None, None, None, lan=lambda: ["192.168.1.7"])
    assert reach.origin == Origin("http", "192.168.1.7", 8501, "/")
    assert [key for key, _ in reach.notes] == ["share_no_host", "share_localhost"]


def test_shown_values_are_short_printable_and_escaped():
    text = links.shown("a\x00b\n*c*" + "x" * 200)
    assert "\x00" not in text and "\n" not in text and "\\*c\\*" in text and text.endswith("…")


def test_lan_addresses_need_no_dns(monkeypatch):
    def no_dns(*args, **kwargs):
        raise AssertionError("lan_addresses looked up a name")
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket, "gethostbyname", no_dns)
    found = links.lan_addresses()
    assert all(not ipaddress.IPv4Address(ip).is_loopback for ip in found)
    assert len(found) == len(set(found))


def test_shared_query_drops_presenter_and_keeps_the_view():
    origin = Origin("http", "192.168.1.7", 8501, "/attention")
    query = {"layer": "3", "head": "2", "presenter": "1", "tour": "4", "lang": "zh", "prompt": "猫和狗都是"}
    out, moved = shared_query(query, origin, save=lambda text: pytest.fail("nothing to store"),
                              texts=("prompt", "compare"))
    assert out == {"layer": "3", "head": "2", "tour": "4", "lang": "zh", "prompt": "猫和狗都是"}
    assert moved == []


def test_a_text_that_makes_the_link_hard_to_scan_goes_by_short_link():
    origin = Origin("http", "192.168.1.7", 8501, "/")
    stored: dict[str, str] = {}

    def save(text: str) -> str:
        stored["k" * 20] = text
        return "k" * 20

    text = "法国的首都是巴黎。" * 30                       # 270 characters, ~2,400 in a URL
    out, moved = shared_query({"prompt": text, "layer": "1"}, origin, save, ("prompt", "compare"))
    assert moved == ["prompt"] and out == {"layer": "1", "prompt_ref": "k" * 20} and stored["k" * 20] == text
    assert len(origin.link(out)) <= links.QR_LINK_CHARS


def test_store_errors_reach_the_caller():
    def broken(text: str) -> str:
        raise OSError("disk full")
    with pytest.raises(OSError):
        shared_query({"prompt": "x" * 2000}, Origin("http", "h", None, "/"), broken, ("prompt",))


@pytest.mark.parametrize("values", [{"prompt": "猫 & 狗=朋友 🐱", "layer": "3"}, {"prompt": "100% a+b #1 ?x"},
                                    {"prompt": "法国的首都是巴黎。", "lang": "zh"}])
def test_readable_links_show_characters_and_open_the_same_view(values):
    from urllib.parse import urlencode
    link = "http://192.168.1.7:8501/tokens?" + urlencode(values)
    shown = links.readable(link)
    assert all(ch in shown for value in values.values() for ch in value if ord(ch) > 127)
    assert {k: v[0] for k, v in parse_qs(urlsplit(shown).query).items()} == values
    assert links.readable("http://h/?p=%FF%FE") == "http://h/?p=%FF%FE"     # not UTF-8: left as it is


def _decode(png: bytes, tmp_path) -> str:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.fail("zbarimg is missing: run scripts/ensure_chromium.sh (it installs zbar-tools)")
    path = tmp_path / "qr.png"
    path.write_bytes(png)
    return subprocess.run([zbarimg, "--raw", "-q", str(path)], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("link", ["http://192.168.1.7:8501/attention?layer=3&head=2&lang=zh",
                                  "http://192.168.1.7:8501/?prompt_ref=0123456789abcdef0123&tour=2",
                                  "http://h:8501/?prompt=" + "x" * 550])
def test_qr_code_decodes_to_the_link(link, tmp_path):
    png = qr_png(link, pixels=460)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert _decode(png, tmp_path) == link
    query = parse_qs(urlsplit(_decode(png, tmp_path)).query)
    assert query                                                    # the view survives the round trip


def test_qr_code_refuses_what_it_cannot_hold():
    assert qr_png("http://h/?" + "x" * 5000) is None
