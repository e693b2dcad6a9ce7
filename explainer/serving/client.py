"""The one narrow client of the cluster: POST a request, get a result back; retry what a worker lost.

- A worker lost in the middle of a request (its process killed, its machine gone: Serve answers
  500/502/504, or the connection breaks) is retried, with backoff, at most :data:`RETRIES` times.
  Requests are pure (the same ids give the same numbers), so a retry is always safe.
- A cluster that is full answers 503 at once with ``Retry-After``; the client waits that long,
  telling whoever listens (:func:`on_busy`: the page shows "busy — retrying in N s") and tries
  again, for at most :data:`BUSY_WAIT_S` seconds in all, then raises :class:`Busy`.
- An error in the request itself (a text too long, a model the cluster does not serve) comes back
  as JSON with its kind and message and is raised here as the same error the library raises
  in-process (:func:`errors`), never retried.

No Ray here: this is plain HTTP (``requests``), so a front end never imports Ray.
"""
from __future__ import annotations

import contextlib
import functools
import json
import random
import threading
import time
import uuid
from typing import Any, Callable, Iterator

import requests

from explainer.serving import TRAVELLING, Busy, NotServed, RemoteError, ServingError, Unreachable, wire

__all__ = ["Busy", "NotServed", "RemoteError", "ServingError", "Unreachable", "errors", "get_json", "on_busy", "post"]

RETRIES = 4                       # a request lost with a worker is sent again at most this many times
BACKOFF_S = 0.5                   # first wait after a lost request; doubled each time (with jitter)
BUSY_WAIT_S = 600.0               # how long in all a request waits on a full cluster before giving up
BUSY_DEFAULT_S = 2                # when a 503 carries no Retry-After
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 900.0            # the longest request (attribution of 256 tokens on a busy CPU) fits
LOST = {500, 502, 504}            # what a lost worker looks like from outside
_sleep = time.sleep               # (tests replace it)


_listeners = threading.local()


@contextlib.contextmanager
def on_busy(listener: Callable[[int], None]) -> Iterator[None]:
    """While inside, ``listener(seconds)`` hears every wait on a full cluster of this thread (each
    second of it, counting down to 1), then ``listener(0)`` once the request went through."""
    stack = getattr(_listeners, "stack", None)
    if stack is None:
        stack = _listeners.stack = []
    stack.append(listener)
    try:
        yield
    finally:
        stack.pop()


def listen(listener: Callable[[int], None] | None) -> None:
    """Make ``listener`` this thread's standing listener (a page run's busy notice); None removes it."""
    _listeners.standing = listener


def _tell(seconds: int) -> None:
    for listener in [getattr(_listeners, "standing", None), *getattr(_listeners, "stack", ())]:
        if listener is not None:
            listener(seconds)


def post(url: str, request: dict[str, Any], session: requests.Session | None = None) -> Any:
    """Send ``request`` to ``url`` and return the value of its result (retrying as the module says)."""
    request = {**request, "request_id": request.get("request_id") or uuid.uuid4().hex}
    body = wire.encode_request(request)
    http = session or _session()
    lost, busy_until, waited = 0, time.monotonic() + BUSY_WAIT_S, False
    while True:
        try:
            reply = http.post(url, data=body, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                              headers={"Content-Type": "application/json", "X-Request-Id": request["request_id"]})
        except requests.ConnectionError as err:
            lost = _lost_again(lost, f"the cluster at {url} did not answer ({type(err).__name__})")
            continue
        if reply.status_code == 200:
            if waited:
                _tell(0)
            return wire.decode_result(reply.content)[0]
        if reply.status_code == 503:
            wait = _retry_after(reply)
            if time.monotonic() + wait > busy_until:
                _tell(0)
                raise Busy(f"The cluster has been full for {BUSY_WAIT_S:.0f} s; try again in a minute.")
            waited = True
            _count_down(wait)
            continue
        error = _error_of(reply)
        if error is None and reply.status_code == 404:
            raise NotServed(f"The cluster at {url.rsplit('/', 2)[0]} does not serve '{request.get('model')}'.")
        if error is None and reply.status_code in LOST:
            lost = _lost_again(lost, f"a worker was lost ({reply.status_code})")
            continue
        raise _as_exception(error, reply)


def _lost_again(lost: int, why: str) -> int:
    if lost >= RETRIES:
        raise Unreachable(f"The request failed {lost + 1} times: {why}. Is the cluster up "
                          "(python -m explainer cluster status)?")
    _sleep(BACKOFF_S * 2 ** lost * (1 + 0.25 * random.random()))
    return lost + 1


def _retry_after(reply: requests.Response) -> int:
    try:
        return max(1, int(float(reply.headers.get("Retry-After", BUSY_DEFAULT_S))))
    except ValueError:
        return BUSY_DEFAULT_S


def _count_down(seconds: int) -> None:
    for left in range(seconds, 0, -1):
        _tell(left)
        _sleep(1.0)
    _sleep(random.random() / 2)          # requests told to wait together do not all come back at once


def _error_of(reply: requests.Response) -> dict | None:
    """Our own JSON error ({"error", "message"}), or None for anything else (Serve's own pages)."""
    try:
        found = json.loads(reply.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return found if isinstance(found, dict) and "error" in found and "message" in found else None


def _as_exception(error: dict | None, reply: requests.Response) -> Exception:
    if error is None:
        return RemoteError(f"The cluster answered {reply.status_code}: {reply.text[:300]}")
    message = str(error["message"])
    known = {**errors(), **TRAVELLING}                          # and those marked by their own modules
    for name in [error["error"], *error.get("kinds", [])]:       # the error's class, then its bases
        if name in known:
            cls = known[name]
            fields = wire.unpack(error.get("fields")) if name == error["error"] else None
            return cls(message, **fields) if isinstance(fields, dict) and fields else cls(message)
    return RemoteError(message)


@functools.cache
def errors() -> dict[str, type[Exception]]:
    """The errors that come back as themselves: a request refused on the cluster raises here what
    it raises in-process."""
    from explainer.budget import TooLarge
    from explainer.models import ModelLoadError

    return {"TooLarge": TooLarge, "ModelLoadError": ModelLoadError, "ValueError": ValueError,
            "TypeError": TypeError, "NotServed": NotServed, "WireError": wire.WireError}


_local = threading.local()


def _session() -> requests.Session:
    """One keep-alive HTTP session per thread (requests' sessions are not shared across threads)."""
    found = getattr(_local, "session", None)
    if found is None:
        found = _local.session = requests.Session()
    return found


def get_json(url: str, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A small GET (routes, health) as JSON; connection problems raise :class:`Unreachable`."""
    try:
        reply = _session().get(url, timeout=timeout)
        reply.raise_for_status()
        return reply.json()
    except (requests.RequestException, ValueError) as err:
        raise Unreachable(f"The cluster at {url} did not answer ({type(err).__name__}).") from err
