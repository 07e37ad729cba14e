"""Fan-out of the event log to the SSE streams of one API process.

One ``EventHub`` per process (``app.state.events``), started by its first subscriber: ONE asyncio
task reads the log from its ``Cursor`` every ``POLL_S`` while the process has streams, and hands
each batch to the subscriptions that may see something in it: the part of a batch in a scope is
built once (``Batch.joined``) and shared by every stream of that scope and masking, so a stream
costs a look-up per batch and is woken only for its own events. Nothing is read while the process
has no streams.

Why a poll and not ``LISTEN``/``NOTIFY``: a transaction that has sent a NOTIFY takes a lock global
to the database cluster's notification queue at commit, held through the commit's WAL flush, so
every intake (one event statement a report) committed one at a time; dropping the notification
raised a loaded intake run from 138 to 202 reports/s (README, Live push). One indexed read per
process every ``POLL_S`` costs the database far less than a notification per report, and keeps a
push's added latency under ``POLL_S`` (plus the read). Every uvicorn worker reads the log itself,
so a report taken by one worker reaches streams held by every other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator

from sqlalchemy.engine import Engine

from gis.core.privacy import role_sees_personal_data
from gis.people.keys import Principal
from gis.people.scope import Scope
from gis.work import events as ev

log = logging.getLogger("gridmap.events")

# Batches a slow stream may fall behind before it is told to reload (event ``resync``).
QUEUE_BATCHES = 512
# How often the log is read while the process has streams: the most it adds to a push. Under a
# stream of reports one read (and one write per stream) carries every event of the interval.
POLL_S = 0.1
RETRY_S = 1.0  # after a failed read (a database outage)
RETRY_MS = 3000  # the browser's reconnection delay (SSE ``retry:``)


class Batch:
    """What one read of the log returned, shared by every stream of the process."""

    def __init__(self, events: list[ev.Event], *, resync: bool = False) -> None:
        self.events = events
        self.resync = resync  # the hub skipped history: every stream's client reloads
        self.ids = frozenset(e.id for e in events)
        self._joined: dict[tuple[Scope, bool, str], bytes] = {}
        # Code prefix -> positions of the events assigned under it, for the prefix lengths asked so
        # far: a scope of N codes then costs N look-ups a batch, not a test per event per stream.
        self._under: dict[str, list[int]] = {}
        self._lengths: set[int] = set()

    def after(self, position: int | None) -> bool:
        return position is None or not self.ids or min(self.ids) > position

    def in_scope(self, scope: Scope) -> list[ev.Event]:
        """The batch's events inside ``scope``: the same as ``ev.visible`` event by event (a code is
        inside when it starts with one of the scope's codes; tests/gis/test_event_batch.py)."""
        if scope.whole:
            return self.events
        if scope.lookup_only or not self.events:
            return []
        for length in {len(c) for c in scope.codes} - self._lengths:
            for pos, event in enumerate(self.events):
                for code in event.codes.values():
                    if code is not None and len(code) >= length:
                        self._under.setdefault(code[:length], []).append(pos)
            self._lengths.add(length)
        hits: set[int] = set()
        for code in scope.codes:
            hits.update(self._under.get(code, ()))
        return [self.events[pos] for pos in sorted(hits)]

    def joined(self, principal: Principal, display_crs: str) -> bytes:
        """The batch's messages a stream of ``principal`` may see, built once per scope and masking
        for every stream of the process that shares them (empty: nothing for that stream)."""
        scope = principal.scope
        key = (scope, role_sees_personal_data(principal.role), display_crs)
        hit = self._joined.get(key)
        if hit is None:
            role = principal.role
            hit = self._joined[key] = b"".join(e.encoded(role, display_crs) for e in self.in_scope(scope))
        return hit


class Subscription:
    """One stream's mailbox: the batches read since it subscribed that hold something it may see."""

    def __init__(self, start_id: int, principal: Principal, display_crs: str) -> None:
        self.start_id = start_id  # the hub's position when the stream joined
        self.principal = principal
        self.display_crs = display_crs
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=QUEUE_BATCHES)
        self.overflowed = False

    def offer(self, batch: Batch) -> None:
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.overflowed = True  # the stream tells its client to reload, and carries on

    def wants(self, batch: Batch) -> bool:
        """Whether the batch holds anything for this stream: a grid worker's phone is not woken
        (one task switch and one socket write) for the other 759 grids' reports."""
        return bool(batch.joined(self.principal, self.display_crs))


class EventHub:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.subscribers: set[Subscription] = set()
        self.reads = 0
        self._cursor: ev.Cursor | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    # --- reading the log -------------------------------------------------------------------

    def _latest(self) -> int:
        with self.engine.connect() as conn:
            return ev.latest_id(conn)

    def _read(self, cursor: ev.Cursor) -> list[ev.Event]:
        with self.engine.connect() as conn:
            events = cursor.read(conn)
            conn.rollback()
        return events

    def backlog(self, after: int, upto: int) -> tuple[list[ev.Event], bool]:
        with self.engine.connect() as conn:
            return ev.backlog(conn, after, upto)

    # --- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake is not None
        more = False
        while True:
            if not more:
                await asyncio.sleep(POLL_S)
            more = False
            cursor = self._cursor
            if not self.subscribers or cursor is None:
                # Nobody listens: no reads until a stream subscribes; it starts from the log's end.
                self._cursor = None
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                batch = await asyncio.to_thread(self._read, cursor)
            except Exception:  # a database outage: keep the streams, try again shortly
                log.exception("reading the event log failed; retrying")
                await asyncio.sleep(RETRY_S)
                continue
            self.reads += 1
            more = len(batch) >= ev.BATCH  # more than one read's worth is waiting: read on at once
            if cursor.jumped:
                cursor.jumped = False
                for sub in list(self.subscribers):
                    sub.offer(Batch([], resync=True))
            if batch:
                shared = Batch(batch)
                for sub in list(self.subscribers):
                    if sub.wants(shared):
                        sub.offer(shared)

    async def subscribe(self, principal: Principal, display_crs: str = "wgs84") -> Subscription:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._task is None or self._task.done():
                self._wake = asyncio.Event()
                self._task = asyncio.get_running_loop().create_task(self._run(), name="gridmap-events")
            if self._cursor is None:
                self._cursor = ev.Cursor(await asyncio.to_thread(self._latest))
            sub = Subscription(self._cursor.last_id, principal, display_crs)
            self.subscribers.add(sub)
            assert self._wake is not None
            self._wake.set()  # an idle loop reads again
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


def _resync(reason: str) -> bytes:
    return f'event: resync\ndata: {{"reason": "{reason}"}}\n\n'.encode()


async def stream(
    hub: EventHub, principal: Principal, resume: int | None, *, display_crs: str = "wgs84"
) -> AsyncIterator[bytes]:
    """The SSE messages of one client: the missed events when it resumes (``resume`` = its
    Last-Event-ID), a ``ready`` event carrying the position it now follows from, then every new
    event it may see (``gis.work.events.visible``), each batch in one write."""
    sub = await hub.subscribe(principal, display_crs)
    role = principal.role
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        sent: set[int] = set()
        position = sub.start_id
        if resume is not None:
            missed, cut = await asyncio.to_thread(hub.backlog, resume, sub.start_id)
            if cut:
                yield _resync("backlog")
            out = [e.encoded(role, display_crs) for e in missed if ev.visible(e, principal)]
            sent = {e.id for e in missed}
            if out:
                yield b"".join(out)
            position = max(resume, sub.start_id)
        # The worker process is named for diagnosis (which of uvicorn's workers holds the stream).
        ready = json.dumps({"last_event_id": position, "worker": os.getpid()})
        yield f"id: {position}\nevent: ready\ndata: {ready}\n\n".encode()
        while True:
            batch = await sub.queue.get()
            if sub.overflowed:
                sub.overflowed = False
                yield _resync("slow client")
            if batch.resync:
                yield _resync("history")
                continue
            if batch.after(resume) and sent.isdisjoint(batch.ids):
                # The common case: the batch's part in scope, built once for every such stream of the process.
                text = batch.joined(principal, display_crs)
            else:
                text = b"".join(
                    e.encoded(role, display_crs)
                    for e in batch.events
                    if e.id not in sent and (resume is None or e.id > resume) and ev.visible(e, principal)
                )
            if text:
                yield text
    finally:
        hub.unsubscribe(sub)
