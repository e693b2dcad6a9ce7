"""Network guard for the browser tests' Streamlit server (loaded through PYTHONPATH).

When ``LLM_EXPLAINER_NETLOG`` names a file, every attempt of this process to reach an
address outside the machine (a DNS lookup of another host, or a connect to a non-loopback
address) is written to that file and refused, as it would be with no network at all.
The offline test reads the file: it must stay empty while every page is used.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import traceback

_LOG = os.environ.get("LLM_EXPLAINER_NETLOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False                                   # a name that needs DNS: not local
    return ip.is_loopback or ip.is_unspecified


def _record(what: str) -> None:
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(f"{what}\n{''.join(traceback.format_stack(limit=12))}\n---\n")


if _LOG:
    _connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def _guarded_connect(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _record(f"connect {address!r}")
            raise OSError(101, "Network is unreachable (blocked by the offline test)")
        return _connect(self, address, *args)

    def _guarded_connect_ex(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _record(f"connect_ex {address!r}")
            return 101
        return _connect_ex(self, address, *args)

    def _guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _record(f"getaddrinfo {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, "Name resolution blocked by the offline test")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
