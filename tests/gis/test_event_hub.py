"""The SSE hub of a process reads the log itself every ``POLL_S`` while it has streams (no NOTIFY,
migration 0028): a committed event reaches a subscription within the poll interval, events
committed out of order all arrive, and a hub without streams reads nothing."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis.people.keys import Principal
from gis.work import eventhub
from gis.work.eventhub import EventHub
from tests.gis.test_event_log import _events, committed  # noqa: F401 - the fixture is used by name

WHOLE = Principal(1, "command centre", "viewer")  # a whole-county stream: every event


def test_no_notify_trigger_is_left_on_the_log(engine: Engine) -> None:
    with engine.connect() as conn:
        triggers = conn.execute(
            sa.text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'incident_events'::regclass AND NOT tgisinternal")
        ).scalars()
        assert "incident_events_notify" not in set(triggers)


def test_a_committed_event_reaches_the_subscription_within_the_poll(engine: Engine, committed: int) -> None:  # noqa: F811
    hub = EventHub(engine)

    async def run() -> tuple[list[int], list[int], float, int, int]:
        sub = await hub.subscribe(WHOLE)
        await asyncio.sleep(2 * eventhub.POLL_S)  # the hub is polling
        started = time.monotonic()

        def commit() -> list[int]:
            with engine.begin() as conn:
                return _events(conn, committed, 3)

        ids = await asyncio.to_thread(commit)
        got: list[int] = []
        while len(got) < len(ids):
            batch = await asyncio.wait_for(sub.queue.get(), 2.0)
            got += [e.id for e in batch.events]
        waited = time.monotonic() - started
        hub.unsubscribe(sub)
        await asyncio.sleep(2 * eventhub.POLL_S)  # the loop notices nobody listens
        idle_from = hub.reads
        await asyncio.sleep(5 * eventhub.POLL_S)
        hub.stop()
        return ids, got, waited, idle_from, hub.reads

    ids, got, waited, idle_from, idle_to = asyncio.run(run())
    assert got == ids
    assert waited < 0.25 + 0.5  # the poll (100 ms), the commit and the read, on a shared machine
    assert idle_to == idle_from  # no streams: no reads
