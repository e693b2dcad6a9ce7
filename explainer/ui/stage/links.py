"""The link a room can open: which address to put in it, its query, and its QR code.

No Streamlit here (the dialog in :mod:`explainer.ui.stage.share` draws it), so every rule is a plain
function with unit tests:

- the address is the one the browser used (``st.context.url``), checked to be a real web address;
  an odd one falls back to the ``Host`` header, then to nothing;
- an address only this computer can reach (localhost, 127.x, ::1) is replaced by this computer's
  network address, read from its interfaces (no DNS, nothing leaves the machine);
- the query is the current view without presenter mode (a display preference of the speaker);
  a text that would make the link too long to scan travels by short link (``<name>_ref``).
"""
from __future__ import annotations

import ipaddress
import io
import re
import socket
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import urlencode, urlsplit

QR_LINK_CHARS = 600          # longer links make QR codes too dense to scan from the back of a room
QR_MAX_BYTES = 2_900         # about what the largest QR code holds (version 40, low error correction)
NOT_SHARED = ("presenter",)  # the speaker's display preference, not part of the view
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?", re.IGNORECASE)
_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_MARKDOWN = set("\\`*_{}[]()<>#+-.!|~$:")
_VIRTUAL = ("docker", "veth", "br-", "virbr", "lxc", "lxd", "vmnet", "vboxnet", "cni", "flannel", "podman")


@dataclass(frozen=True)
class Origin:
    """Where the app is served: scheme, host (IPv6 without brackets), port and path."""

    scheme: str
    host: str
    port: int | None = None
    path: str = "/"

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def link(self, query: Mapping[str, str]) -> str:
        tail = "?" + urlencode(dict(query)) if query else ""
        return f"{self.scheme}://{self.netloc}{self.path or '/'}{tail}"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(host))


def parse_url(url: object) -> Origin | None:
    """The origin and path of an http(s) URL, or None when it is not a plain web address."""
    if not isinstance(url, str) or not url or len(url) > 2_000 or any(ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:                                   # bad port, bad brackets
        return None
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    if not _valid_host(host) or not _PATH.fullmatch(parts.path or "/"):
        return None
    return Origin(parts.scheme, host.lower(), port, parts.path or "/")


def parse_host_header(value: object, scheme: str = "http", path: str = "/") -> Origin | None:
    """An ``Host: name[:port]`` header as an origin, or None when it is odd."""
    if not isinstance(value, str) or not value or len(value) > 300:
        return None
    return parse_url(f"{scheme}://{value.strip()}{path}") if "/" not in value and "@" not in value else None


def is_loopback(host: str) -> bool:
    """True for an address that only this computer can reach."""
    if host.lower().rstrip(".") in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host.lower().endswith(".localhost")
    return ip.is_loopback or ip.is_unspecified


def lan_addresses() -> list[str]:
    """This computer's IPv4 addresses that others on a network can reach, best first.

    Read from the network interfaces (Linux) without any DNS lookup or packet; elsewhere
    from the addresses of this computer's own name. Loopback and link-local addresses are
    left out; virtual bridges (Docker, VMs) come last.
    """
    found: list[tuple[int, str]] = []
    for name, ip in _interface_addresses():
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            continue
        if addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast:
            continue
        rank = (2 if name.startswith(_VIRTUAL) else 0) + (0 if addr.is_private else 1)
        found.append((rank, ip))
    seen: list[str] = []
    for _, ip in sorted(found):
        if ip not in seen:
            seen.append(ip)
    return seen


def _interface_addresses() -> list[tuple[str, str]]:
    if sys.platform.startswith("linux"):
        import fcntl
        import struct
        out = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                try:
                    packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
                except OSError:                          # an interface without an IPv4 address
                    continue
                out.append((name, socket.inet_ntoa(packed[20:24])))
        return out
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return [("", info[4][0]) for info in infos]


@dataclass(frozen=True)
class Reach:
    """The origin to put in a shared link, and the notes (text key, fields) that explain it."""

    origin: Origin
    notes: tuple[tuple[str, Mapping[str, str]], ...] = field(default_factory=tuple)


def reachable_origin(browser_url: object, host_header: object, server_address: str | None,
                     lan: Callable[[], list[str]] = lan_addresses) -> Reach:
    """Choose the address students can open, from what the browser used.

    Falls back to the ``Host`` header, then to ``http://localhost:8501``; replaces a loopback
    host with this computer's network address; warns when the server only listens locally.
    """
    notes: list[tuple[str, Mapping[str, str]]] = []
    origin = parse_url(browser_url)
    if origin is None:
        origin = parse_host_header(host_header)
        fallback = origin or Origin("http", "localhost", 8501)
        if browser_url:
            notes.append(("share_odd_host", {"host": shown(browser_url), "used": fallback.netloc}))
        elif origin is None:
            notes.append(("share_no_host", {"used": fallback.netloc}))
        origin = fallback
    if is_loopback(origin.host):
        others = lan()
        if others:
            notes.append(("share_localhost", {"host": origin.host, "ip": others[0]}))
            origin = Origin(origin.scheme, others[0], origin.port, origin.path)
        else:
            notes.append(("share_no_network", {"host": origin.host}))
    listen = (server_address or "").strip().strip("[]")
    if listen and is_loopback(listen) and listen not in ("0.0.0.0", "::"):   # those two mean "every interface"
        notes.append(("share_loopback_only", {"address": server_address}))
    return Reach(origin, tuple(notes))


def shown(value: object) -> str:
    """A value from outside, to quote in a Markdown message: cut short, printable, Markdown escaped."""
    text = "".join(("\\" + ch if ch in _MARKDOWN else ch) for ch in str(value)[:80] if ch.isprintable())
    return text + ("…" if len(str(value)) > 80 else "")


def shared_query(query: Mapping[str, str], origin: Origin, save: Callable[[str], str], texts: tuple[str, ...],
                 limit: int = QR_LINK_CHARS) -> tuple[dict[str, str], list[str]]:
    """The view's query for the room: without presenter mode, long texts by short link.

    A text travels by short link when the link would otherwise be longer than ``limit``
    (the URL itself already does so past 4,000 characters). Returns the query and the names
    of the texts that moved; ``save`` errors (``OSError``, ``ValueError``) propagate.
    """
    out = {k: v for k, v in query.items() if k not in NOT_SHARED}
    moved: list[str] = []
    for name in texts:                              # e.g. ("prompt", "compare")
        if name in out and len(origin.link(out)) > limit:
            out[name + "_ref"] = save(out.pop(name))
            moved.append(name)
    return out, moved


_NON_ASCII_ESCAPES = re.compile(r"(?:%[89A-Fa-f][0-9A-Fa-f])+")


def readable(link: str) -> str:
    """``link`` with its non-ASCII text shown as characters (巴黎, not %E5%B7%B4%E9%BB%8E).

    Only escapes of bytes ≥ 0x80 that form whole UTF-8 characters are decoded; ASCII escapes
    (``%26`` for "&", ``%3D`` for "=", ``+`` for a space) stay, so the readable form still
    opens the same view when typed or pasted into a browser.
    """
    def decode(match: re.Match[str]) -> str:
        raw = bytes.fromhex(match.group(0).replace("%", ""))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return match.group(0)
    return _NON_ASCII_ESCAPES.sub(decode, link)


def qr_png(link: str, pixels: int = 480) -> bytes | None:
    """A PNG QR code of ``link`` about ``pixels`` wide (black on white), or None if it cannot hold it."""
    import segno

    if len(link.encode("utf-8")) > QR_MAX_BYTES:
        return None
    try:
        code = segno.make(link, error="m", micro=False, boost_error=False)
    except segno.DataOverflowError:
        try:
            code = segno.make(link, error="l", micro=False, boost_error=False)
        except segno.DataOverflowError:
            return None
    border = 4
    modules = code.symbol_size(scale=1, border=border)[0]
    buf = io.BytesIO()
    code.save(buf, kind="png", scale=max(2, pixels // modules), border=border, dark="#000000", light="#ffffff")
    return buf.getvalue()
