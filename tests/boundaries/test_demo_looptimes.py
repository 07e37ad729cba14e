"""The demo's generated incidents get the loop's timestamps their status implies, in order; live
incidents (with events) are left alone; a second run changes nothing."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from demo.jiashan.looptimes import fill_loop_times

STATUSES = ("reported", "accepted", "rejected", "dispatched", "in_progress", "handled", "verified", "closed")


def test_fill_loop_times(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    ids = {}
    for n, status in enumerate(STATUSES * 3):
        reported = now - dt.timedelta(days=3, hours=n)
        ids[n] = connection.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, closed_at, geom) VALUES "
                "('dispute', 'grid_patrol', :r, :s, :d, :c, ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326)) "
                "RETURNING id"
            ),
            {"r": reported, "s": status, "d": reported + dt.timedelta(hours=48),
             "c": reported + dt.timedelta(hours=30) if status == "closed" else None},
        ).scalar_one()  # fmt: skip
    live = ids[len(ids) - 1]  # a closed one with a history of its own
    connection.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, to_status) "
            "VALUES (:i, now(), 'x', 'report', 'reported')"
        ),
        {"i": live},
    )  # fmt: skip
    changed = fill_loop_times(connection)
    rows = connection.execute(
        sa.text(
            "SELECT id, status, reported_at, accepted_at, dispatched_at, on_scene_at, handled_at, verified_at, "
            "closed_at, closed_level FROM incidents ORDER BY id"
        )
    ).mappings().all()  # fmt: skip
    expected_changed = sum(1 for r in rows if r["status"] not in ("reported", "rejected") and r["id"] != live)
    assert changed == expected_changed
    for r in rows:
        step = STATUSES.index(r["status"])
        if r["id"] == live:
            assert r["accepted_at"] is None and r["closed_level"] is None
            continue
        assert (r["accepted_at"] is not None) == (r["status"] not in ("reported", "rejected"))
        assert (r["handled_at"] is not None) == (step >= STATUSES.index("handled"))
        assert (r["closed_level"] is not None) == (r["status"] == "closed")
        times = [r[c] for c in ("reported_at", "accepted_at", "dispatched_at", "on_scene_at", "handled_at",
                                "verified_at", "closed_at") if r[c] is not None]  # fmt: skip
        assert times == sorted(times), r
    assert fill_loop_times(connection) == 0
