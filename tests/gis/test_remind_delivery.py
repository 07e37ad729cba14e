"""Reminders (催办) reach the reminded holders, end to end on a committed database with a real
``gridmap worker`` and a real HTTP receiver: a dispatcher's reminder (gis.dispatch.orders.remind)
and the system's reminder at a supervision order's due date (the worker runs the job,
gis.dispatch.deadlines) are events of the log, so they are on the ``/events`` streams of keys whose
scope holds the incident, and the fan-out job queues a delivery job for the webhook of the
reminded unit (only its area's units: not the neighbour village's)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis.core import db
from gis.dispatch.orders import remind, supervise
from gis.people.keys import create_key, verify_key
from gis.work.events import latest_id, read_after, visible
from tests.gis.test_jobs import workers
from tests.gis.test_webhook_delivery import (  # noqa: F401 - fixtures used by name
    SECRET,
    WEST_SOUTH,
    engine,
    hook,
    log_rows,
    outbound_db,
    report,
    wait_for,
)
from tests.receiver import Receiver

STATION, NEIGHBOUR = "V330421001001", "V330421001002"  # the report's village station, and the next one


def test_reminders_reach_the_reminded_units_webhook_and_stream(
    engine: Engine,  # noqa: F811
    hook: Callable[..., int],  # noqa: F811
    tmp_path: Path,
) -> None:
    with Receiver() as receiver, workers(engine.url.render_as_string(hide_password=False), tmp_path):
        mine = hook(STATION[1:], receiver.url, events=["remind"])
        other = hook(NEIGHBOUR[1:], receiver.url, events=["remind"])
        with engine.connect() as conn:
            start = latest_id(conn)
        iid = report(engine, WEST_SOUTH)  # no grid worker on duty: offered to the village station
        with db.transaction(engine) as session:
            held = session.execute(
                sa.text(
                    "SELECT ou.code FROM incident_assignments a JOIN org_units ou ON ou.id = a.org_unit_id "
                    "WHERE a.incident_id = :i AND a.state = 'offered'"
                ),
                {"i": iid},
            ).scalars()
            assert list(held) == [STATION]
            reminded = remind(session, iid, "dispatcher-1", "请尽快处理")
            assert reminded["reminded"] == [f"org unit {STATION}"]
            due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
            order = supervise(session, iid, "dispatcher-1", "今日内回复", due)
        # The dispatcher's reminder, then the system's at the due date (the worker runs that job).
        ok = wait_for(lambda: [r.status for r in log_rows(engine, webhook_id=mine)] == ["delivered"] * 2, 40)
        assert ok, (log_rows(engine, webhook_id=mine), receiver.hits)
        time.sleep(2.5)  # a fan-out or two more: still nothing for the neighbour's webhook
    assert log_rows(engine, webhook_id=other) == []
    bodies = [h.json for h in receiver.hits]
    assert all(h.verified(SECRET) for h in receiver.hits)
    assert [(b["action"], b["actor"], b["org_unit"], b["incident"]["id"]) for b in bodies] == [
        ("remind", "dispatcher-1", STATION, iid),
        ("remind", "system", STATION, iid),
    ]
    assert bodies[0]["note"] == f"reminded org unit {STATION}: 请尽快处理"
    assert bodies[1]["note"] == f"supervision {order['id']}: reply overdue"
    assert bodies[0]["holder"]["org_unit"] == STATION  # whom the reminder is for
    # The same two events are on the streams (GET /events reads the log): the station's key sees
    # them, the neighbour village's does not.
    with db.transaction(engine) as session:
        station_id, neighbour_id = (
            session.execute(sa.text("SELECT id FROM org_units WHERE code = :c"), {"c": c}).scalar_one()
            for c in (STATION, NEIGHBOUR)
        )
        station_key = verify_key(session, create_key(session, "viewer", "station-r", org_unit_id=station_id))
        neighbour_key = verify_key(session, create_key(session, "viewer", "neighbour-r", org_unit_id=neighbour_id))
        events = [
            e for e in read_after(session, start) if e.data["incident_id"] == iid and e.data["action"] == "remind"
        ]
    assert station_key is not None and neighbour_key is not None
    assert [(e.type, e.data["actor"]) for e in events] == [
        ("incident.status", "dispatcher-1"),
        ("incident.status", "system"),
    ]
    assert all(visible(e, station_key) and not visible(e, neighbour_key) for e in events)
