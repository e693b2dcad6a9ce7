"""Sessions of the running app without a browser: Streamlit's own websocket protocol, spoken as the
browser speaks it, so that thirty sessions cost the server what thirty students cost it and the
load generator next to nothing.

A :class:`Session` opens ``/_stcore/stream``, asks for a page with a query string (the URL's), and
reads what the server sends: page elements (charts among them), exceptions, and the progress lines
of heavy parts, which are fragments that the browser re-runs every second (``auto_rerun``); it
re-runs them the same way, so the server sees a session that keeps waiting. A session is *done*
when a whole run of the page finishes with no such fragment left: every part is drawn.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect


@dataclass
class Visit:
    """What one session saw, in seconds from its first message."""

    page: str
    first_chart: float | None = None
    done: float | None = None                 # the whole page drawn, no part pending
    charts: int = 0                           # charts in the last whole run
    exceptions: list[str] = field(default_factory=list)
    fragment_runs: int = 0


class Session:
    """One browser session without the browser (see the module doc)."""

    def __init__(self, base_url: str, page: str, query: dict | None = None) -> None:
        self.url = base_url.replace("http", "ws", 1).rstrip("/") + "/_stcore/stream"
        self.page, self.query = page, urlencode(query or {})
        self.visit = Visit(page)
        self._timers: dict[str, asyncio.Task] = {}
        self._page_hash = ""
        self._sent: dict[str, ForwardMsg] = {}     # what the server sent, by hash: it may refer to it again
        self.log: list[str] = []

    async def run(self, timeout: float) -> Visit:
        """Open the page and read until it is done (or ``timeout`` seconds)."""
        self._start = time.monotonic()
        async with connect(self.url, subprotocols=["streamlit"], max_size=None) as ws:
            self._ws = ws
            try:
                await self._send(fragment="")
                await asyncio.wait_for(self._read(), timeout)
            except asyncio.TimeoutError:
                pass
            finally:
                for task in self._timers.values():
                    task.cancel()
        return self.visit

    async def _send(self, fragment: str) -> None:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_name = self.query, self.page
        state.page_script_hash = self._page_hash
        if fragment:
            state.fragment_id, state.is_auto_rerun = fragment, True
            self.visit.fragment_runs += 1
        await self._ws.send(msg.SerializeToString())

    async def _read(self) -> None:
        charts, fragments = 0, set()              # in this whole run: charts drawn, progress lines drawn
        while True:
            try:
                raw = await self._ws.recv()
            except ConnectionError:
                return
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            if msg.WhichOneof("type") == "ref_hash" and msg.ref_hash in self._sent:
                msg = self._sent[msg.ref_hash]
            elif msg.hash:
                self._sent[msg.hash] = msg
            kind = msg.WhichOneof("type")
            self.log.append(f"{time.monotonic() - self._start:.1f} {kind} "
                            f"{msg.delta.new_element.WhichOneof('type') if kind == 'delta' else ''} "
                            f"{msg.script_finished if kind == 'script_finished' else ''}")
            if kind == "new_session":
                self._page_hash = msg.new_session.page_script_hash
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element.WhichOneof("type")
                if element == "plotly_chart":
                    charts += 1
                    if self.visit.first_chart is None:
                        self.visit.first_chart = time.monotonic() - self._start
                elif element == "exception":
                    self.visit.exceptions.append(msg.delta.new_element.exception.message[:300])
            elif kind == "auto_rerun":
                fragments.add(msg.auto_rerun.fragment_id)
                self._every(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
            elif kind == "script_finished" and msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                for gone in set(self._timers) - fragments:             # a whole run drew them no more
                    self._timers.pop(gone).cancel()
                self.visit.charts = charts
                if not fragments and charts:
                    self.visit.done = time.monotonic() - self._start
                    return
                charts, fragments = 0, set()

    def _every(self, fragment: str, interval: float) -> None:
        if fragment in self._timers:
            return

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                await self._send(fragment)
        self._timers[fragment] = asyncio.ensure_future(tick())


async def _room(base_url: str, page: str, queries: list[dict], timeout: float) -> list[Visit]:
    return list(await asyncio.gather(*(Session(base_url, page, q).run(timeout) for q in queries)))


def room(base_url: str, page: str, queries: list[dict], timeout: float = 600.0) -> list[Visit]:
    """Open ``page`` once per query, all at once; what each session saw."""
    return asyncio.run(_room(base_url, page, queries, timeout))
