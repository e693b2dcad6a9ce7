"""Heavy parts of a page behind it: a progress line that fills in (page glue of :mod:`explainer.jobs`).

A page asks :func:`behind` for a part by a *slot* (``"why.inputs"``) and a *key* that names the
computation. It gets the job's :class:`~explainer.jobs.Status` at once and draws what is there
(the result, a published partial result, or nothing yet); while the job is pending, a progress
line sits in the part's place. That line is a fragment that re-runs itself every
:data:`POLL_SECONDS` (only it, not the page; less often the more sessions wait, so that thirty
waiting students leave the jobs their CPU), which also tells the runner that this session still
waits; when the job finishes or publishes something new it re-runs the whole page once, which
then draws the part from the stored result.

A session waits for one key per slot: asking a slot for another key (the text or the method
changed) releases the old one, and opening another page releases the slots of the pages left
(:func:`leave_other_pages`, from ``start_page``); a part the page stops asking for (its input
became bad) is released with :func:`let_go`. A job that no session wants any more is
cancelled; one that a closed tab stopped polling is cancelled after the runner's
``abandon_after``. Sessions asking for the same key share one computation. A job whose work went
to a cluster that is full says "busy — retrying in N s" on its line (:mod:`explainer.serving.remote`).
"""
from __future__ import annotations

import uuid
from typing import Any, Callable, Hashable, Mapping

import streamlit as st

from explainer.jobs import Busy, JobContext, Status, runner
from explainer.serving.remote import busy_seconds
from explainer.ui.frame import run

POLL_SECONDS = 1.0            # how often a progress line asks, with few sessions waiting …
POLL_PER_WAITING = 0.3        # … and with many: 0.3 s per waiting session (30 sessions: every 9 s),
MAX_POLL_SECONDS = 9.0        # well within the runner's 20 s lease; the page's reruns leave the jobs CPU
_SLOTS, _OWNER = "_jobs_slots", "_jobs_owner"


def owner(session: Mapping[str, Any] | None = None) -> str | None:
    """This browser session's name as a job owner (or a session-state mapping's: tests)."""
    if session is not None:
        return session[_OWNER] if _OWNER in session else None
    return st.session_state.setdefault(_OWNER, uuid.uuid4().hex)


def behind(slot: str, key: Hashable, compute: Callable[[JobContext], Any], label: str,
           texts: Mapping[str, str], finish: bool = False, messages: Mapping[str, str] | None = None) -> Status:
    """The status of ``compute`` for ``key`` (submitted if new); a progress line while pending.

    ``slot`` is ``"<page>.<part>"``; ``label`` heads the progress line; ``texts`` are the common
    texts (the queued and busy messages); ``messages`` words the job's progress messages (the
    line shows the label alone for others). ``finish``: run to the end even if everyone leaves.
    """
    slots = st.session_state.setdefault(_SLOTS, {})
    if slots.get(slot, key) != key:
        runner().release(slots[slot], owner())
    slots[slot] = key
    try:
        status = runner().submit(key, compute, owner(), finish)
    except Busy:
        st.info(texts["jobs_busy"])
        return Status(key, "cancelled")
    if status.pending:                            # its box is classed st-key-job-<slot> (browser tests find it)
        with st.container(key="job-" + slot.replace(".", "-")):
            every = min(MAX_POLL_SECONDS, max(POLL_SECONDS, POLL_PER_WAITING * runner().waiting()))
            st.fragment(_progress_line, run_every=every)(key, label, {"queued": texts["jobs_queued"], "busy": texts["busy"]},
                                                         dict(messages or {}), id(status.partial))
    return status


def let_go(slot: str) -> None:
    """Stop waiting for ``slot``'s job: the page no longer asks for that part (a bad input)."""
    slots = st.session_state.get(_SLOTS, {})
    if slot in slots:
        runner().release(slots.pop(slot), owner())


def leave_other_pages(page: str) -> None:
    """Release the jobs this session waited for on other pages (it moved on)."""
    slots = st.session_state.get(_SLOTS, {})
    for slot in [s for s in slots if s.split(".", 1)[0] != page]:
        runner().release(slots.pop(slot), owner())


def waiting_for(session: Mapping[str, Any] | None = None) -> dict[str, Hashable]:
    """The keys a session waits for, by slot (this run's session, or a session-state mapping: tests)."""
    session = st.session_state if session is None else session
    return dict(session[_SLOTS]) if _SLOTS in session else {}


def _progress_line(key: Hashable, label: str, waits: dict[str, str], messages: dict[str, str], drawn: int) -> None:
    """The line in a pending part's place; ``drawn`` names the partial result the page drew;
    ``waits`` words a job queued here ("queued") and one waiting on a full cluster ("busy")."""
    status = runner().poll(key, owner())
    if status is None or not status.pending or id(status.partial) != drawn:
        run.redraw_for_a_part()                       # widgets from the stored values, not the fragment's
        st.rerun()                                    # the whole page: it draws what is ready now
    busy = busy_seconds(status.message)
    if status.state == "queued" and status.waiting_behind:
        st.progress(0.0, text=f"{label} — {waits['queued'].format(n=status.waiting_behind)}")
    elif busy is not None:                            # the cluster is full: the job retries in N s
        st.progress(status.fraction, text=f"{label} — {waits['busy'].format(n=busy)}")
    else:
        st.progress(status.fraction, text=f"{messages.get(status.message, label)} {status.fraction:.0%}")
