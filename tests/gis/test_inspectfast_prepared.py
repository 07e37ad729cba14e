"""``inspectfast.record_one`` calls gridmap_record_inspection as a statement prepared on the
server (gis.core.prepared): the same answer whether given a connection or a session, the call
kept in pg_prepared_statements after the first inspection, and psycopg's settings restored."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gis.fieldwork import inspectfast
from gis.people.scope import WHOLE_COUNTY
from tests.gis.fieldwork_fixtures import add_building, add_posting


def _body(worker: int, police: int) -> dict[str, Any]:
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0).isoformat()
    return {
        "inspectors": [worker, police],
        "at": at,
        "results": [{"code": "escape_window", "result": "fail"}, {"code": "gas", "result": "pass"}],
    }


def _prepared_calls(connection: Connection) -> int:
    return int(
        connection.execute(
            sa.text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%gridmap_record_inspection(%'")
        ).scalar_one()
    )


def test_the_call_is_prepared_on_the_server_for_a_connection_and_a_session(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    worker, police = add_posting(connection, "李网格", "grid_worker"), add_posting(connection, "王辅警", "aux_police")
    one, two = add_building(connection, "B-PREP-1"), add_building(connection, "B-PREP-2")
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    threshold, factory = driver.prepare_threshold, driver.cursor_factory
    first = inspectfast.record_one(connection, one, _body(worker, police), "tests", WHOLE_COUNTY)
    assert first is not None and first["outcome"] == "fail" and first["risk_level"] == "high"
    assert len(first["hazards_opened"]) == 1 and first["replayed"] is False
    assert _prepared_calls(connection) == 1
    assert (driver.prepare_threshold, driver.cursor_factory) == (threshold, factory)
    with Session(bind=connection) as session:  # a session's connection takes the same statement
        second = inspectfast.record_one(session, two, _body(worker, police), "tests", WHOLE_COUNTY)
    assert second is not None and second["building_id"] == two
    assert {k: v for k, v in second.items() if k not in ("id", "building_id", "at", "hazards_opened")} == {
        k: v for k, v in first.items() if k not in ("id", "building_id", "at", "hazards_opened")
    }
    assert _prepared_calls(connection) == 1  # reused, not prepared again
    stored = connection.execute(
        sa.text("SELECT building_id, outcome, failed_items FROM inspections WHERE id = ANY(:ids) ORDER BY id"),
        {"ids": [first["id"], second["id"]]},
    ).all()
    assert [tuple(r) for r in stored] == [(one, "fail", 1), (two, "fail", 1)]
