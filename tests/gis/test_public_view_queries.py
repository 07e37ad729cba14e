"""The tracking page (gis.channels.public.view_report) reads each thing once: the unit handling the
matter was read twice (once for the page, once for its timeline), two statements of the page's
seven spent on the same answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from gis.channels.public import submit_report, view_report
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
    assert len(seen) == 7
    # The unit named on the page is the one its timeline names (the village and town of the point).
    assert page["unit"] and page["timeline"][0]["step"] == "received"
    assert page["status"] == "received" and page["ticket"] == answer["ticket"]
