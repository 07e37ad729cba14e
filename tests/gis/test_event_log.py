"""The event log as the live push reads it (gis.work.events): types, the bounded backlog of a
resume, and the cursor that waits for ids committed out of order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis.work import events as ev

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def _incident(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, geom) VALUES ('dispute', 'grid_patrol', "
                ":at, ST_SetSRID(ST_MakePoint(120.905, 30.832), 4326)) RETURNING id"
            ),
            {"at": NOW},
        ).scalar_one()
    )


def _events(conn: Connection, incident: int, n: int, at: dt.datetime = NOW, action: str = "report") -> list[int]:
    rows = conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, to_status) "
            "SELECT :i, :at, 'tests', :action, 'reported' FROM generate_series(1, :n) RETURNING id"
        ),
        {"i": incident, "at": at, "action": action, "n": n},
    )
    return sorted(int(r[0]) for r in rows)


def test_event_types_follow_the_action() -> None:
    assert ev.event_type("report", "reported", None) == "incident.created"
    assert ev.event_type("accept", "accepted", None) == "incident.status"
    assert ev.event_type("escalate", "dispatched", "grid → village") == "incident.escalated"
    assert ev.event_type("escalate", "dispatched", "overdue: grid → village") == "incident.overdue"


def test_a_resume_gets_the_missed_events_up_to_the_bound(connection: Connection) -> None:
    incident = _incident(connection)
    ids = _events(connection, incident, 5)
    missed, cut = ev.backlog(connection, ids[1], ids[-1], now=NOW)
    assert [e.id for e in missed] == ids[2:] and not cut
    assert missed[0].codes.keys() == set(ev.CODE_COLUMNS)
    assert missed[0].data["incident_id"] == incident
    # More than BACKLOG_EVENTS missed: the newest ones, and the flag that the client must reload.
    many = _events(connection, incident, ev.BACKLOG_EVENTS + 5)
    missed, cut = ev.backlog(connection, ids[-1], many[-1], now=NOW)
    assert cut and len(missed) == ev.BACKLOG_EVENTS and missed[-1].id == many[-1]


def test_a_resume_older_than_the_bound_is_told_to_reload(connection: Connection) -> None:
    incident = _incident(connection)
    old = _events(connection, incident, 3, at=NOW - ev.BACKLOG_AGE - dt.timedelta(hours=1))
    recent = _events(connection, incident, 2)
    missed, cut = ev.backlog(connection, old[0] - 1, recent[-1], now=NOW)
    assert [e.id for e in missed] == recent and cut


def test_an_encoded_event_masks_personal_data_below_dispatcher(connection: Connection) -> None:
    incident = _incident(connection)
    connection.execute(sa.text("UPDATE incidents SET reporter_phone = '13612345678' WHERE id = :i"), {"i": incident})
    event = ev.read_after(connection, _events(connection, incident, 1)[0] - 1)[0]
    assert b"136****5678" in event.encoded("viewer") and b"13612345678" not in event.encoded("viewer")
    assert b"13612345678" in event.encoded("dispatcher")
    assert event.encoded("viewer").startswith(f"id: {event.id}\nevent: incident.created\ndata: ".encode())


@pytest.fixture
def committed(engine: Engine) -> Iterator[int]:
    """An incident committed (the cursor reads from connections of its own); removed afterwards."""
    with engine.begin() as conn:
        incident = _incident(conn)
    yield incident
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM incidents WHERE id = :i"), {"i": incident})


def test_the_cursor_waits_for_an_id_committed_after_a_later_one(engine: Engine, committed: int) -> None:
    with engine.connect() as conn:
        cursor = ev.Cursor(ev.latest_id(conn))
    slow = engine.connect()
    slow_tx = slow.begin()
    early = _events(slow, committed, 1)[0]  # takes its id first, commits last
    with engine.begin() as conn:
        late = _events(conn, committed, 1)[0]
    with engine.connect() as conn:
        assert [e.id for e in cursor.read(conn)] == [late]
    assert early in cursor.gaps
    slow_tx.commit()
    slow.close()
    with engine.connect() as conn:
        assert [e.id for e in cursor.read(conn)] == [early]
        # Ids rolled back by other tests' transactions may stay as gaps; this one is no longer one.
        assert early not in cursor.gaps and cursor.read(conn) == []


def test_a_wide_hole_in_the_ids_does_not_stop_the_waiting_for_late_commits(
    engine: Engine, committed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids that never come (here: rolled back) just above the cursor's start once filled every gap
    place, and an id committed out of order later was never read."""
    monkeypatch.setattr(ev, "GAP_SPAN", 20)
    monkeypatch.setattr(ev, "MAX_GAPS", 50)
    with engine.connect() as conn:
        cursor = ev.Cursor(ev.latest_id(conn))
    with engine.connect() as conn, conn.begin() as tx:
        _events(conn, committed, 200)  # a hole of 200 ids, wider than MAX_GAPS
        tx.rollback()
    with engine.begin() as conn:
        first = _events(conn, committed, 1)[0]
    with engine.connect() as conn:
        assert [e.id for e in cursor.read(conn)] == [first]
    assert len(cursor.gaps) <= 20  # only the hole's top is waited for
    slow = engine.connect()
    slow_tx = slow.begin()
    early = _events(slow, committed, 1)[0]
    with engine.begin() as conn:
        late = _events(conn, committed, 1)[0]
    with engine.connect() as conn:
        assert [e.id for e in cursor.read(conn)] == [late]
    slow_tx.commit()
    slow.close()
    with engine.connect() as conn:
        assert [e.id for e in cursor.read(conn)] == [early]


def test_the_cursor_skips_history_rather_than_push_it(
    engine: Engine, committed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ev, "BATCH", 5)
    monkeypatch.setattr(ev, "MAX_LAG", 10)
    with engine.connect() as conn:
        cursor = ev.Cursor(ev.latest_id(conn))
    with engine.begin() as conn:
        seeded = _events(conn, committed, 30, at=NOW - dt.timedelta(days=200))
    with engine.connect() as conn:
        assert cursor.read(conn) == []
        assert cursor.jumped and cursor.last_id == seeded[-1]
    with engine.begin() as conn:
        live = _events(conn, committed, 2)
    with engine.connect() as conn:
        assert [e.id for e in cursor.read(conn)] == live
