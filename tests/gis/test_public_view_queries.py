"""The residents' paths read each thing once (issue 19): the tracking page (view_report) read the unit
handling the matter twice (for the page and for its timeline) and the ticket, its incident, its
rating and its photos one statement each (9 statements, now 4), and a new report (submit_report)
read back the incident the intake had just answered with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from gis.channels.public import incident_brief, submit_report, view_report
from gis.core.settings import Settings


@contextmanager
def _statements(conn: Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(conn, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", before)


def test_tracking_page_reads_the_handling_unit_once(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    body = {"category": "noise", "description": "夜间施工噪音", "lon": 120.905, "lat": 30.832, "crs": "wgs84"}
    answer = submit_report(connection, body, ip="127.0.0.1", settings=Settings(freeze_heap=False))
    with _statements(connection) as seen:
        page = view_report(connection, answer["ticket"], answer["token"], "zh")
    holders = [s for s in seen if "incident_assignments" in s]
    names = [s for s in seen if "FROM areas" in s]
    assert len(holders) == 1 and len(names) == 1, seen
    # The ticket with its incident, rating and photo count; the unit (holder, names); the events.
    assert len(seen) == 4
    # The unit named on the page is the one its timeline names (the village and town of the point).
    assert page["unit"] and page["timeline"][0]["step"] == "received"
    assert page["status"] == "received" and page["ticket"] == answer["ticket"]


def test_new_report_does_not_read_back_the_incident(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(freeze_heap=False)
    body = {"category": "garbage", "description": "垃圾堆放", "lon": 120.905, "lat": 30.833, "crs": "wgs84"}
    with _statements(connection) as seen:
        answer = submit_report(connection, body, ip="127.0.0.1", settings=settings)
    # The duplicate search, the intake's one statement, the ticket: nothing more.
    assert len(seen) == 3, seen
    assert not any(s.lstrip().startswith("SELECT id, category, status") for s in seen)
    brief = incident_brief(connection, answer["incident_id"])
    assert answer["status"] == "received" and brief["status"] == "reported"
    assert answer["outside_county"] is (brief["assign_status"] == "outside_jurisdiction") is False
    # A second report of the same matter is merged, and then the incident is read (as before).
    with _statements(connection) as seen:
        again = submit_report(connection, body, ip="127.0.0.1", settings=settings)
    assert again["merged"] is True and again["incident_id"] == answer["incident_id"]
    assert any(s.lstrip().startswith("SELECT id, category, status") for s in seen)
