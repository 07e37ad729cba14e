"""Two inspections of one building at once through ``inspectfast.record_one`` (one call of
``gridmap_record_inspection``, migration 0035): the second waits for the building's lock and then
sees what the first committed, so the hazard the first opened is re-inspected, not opened twice.

The rows are committed (each inspection is its own transaction here), so the test removes them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis.fieldwork import inspectfast
from gis.people.scope import WHOLE_COUNTY
from tests.gis.fieldwork_fixtures import add_building, add_posting


def _body(worker: int, police: int, at: dt.datetime) -> dict[str, Any]:
    return {
        "inspectors": [worker, police],
        "at": at.isoformat(),
        "results": [{"code": "escape_window", "result": "fail"}, {"code": "gas", "result": "pass"}],
    }


def _waiting_for_a_lock(engine: Engine) -> bool:
    # A transaction of its own each time: within one, the activity view keeps its first snapshot.
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


def _remove(engine: Engine, building: int, postings: list[int]) -> None:
    with engine.begin() as conn:
        hazards = conn.execute(sa.text("SELECT id FROM hazards WHERE building_id = :b"), {"b": building}).scalars()
        ids = list(hazards)
        inspections = list(
            conn.execute(sa.text("SELECT id FROM inspections WHERE building_id = :b"), {"b": building}).scalars()
        )
        targets = [f"hazard/{h}" for h in ids] + [f"inspection/{i}" for i in inspections]
        conn.execute(sa.text("DELETE FROM hazard_events WHERE hazard_id = ANY(:h)"), {"h": ids})
        conn.execute(
            sa.text("DELETE FROM procrastinate_jobs WHERE lock = ANY(:l)"), {"l": [f"hazard:{h}" for h in ids]}
        )
        conn.execute(sa.text("DELETE FROM audit_log WHERE target = ANY(:t)"), {"t": targets})
        conn.execute(sa.text("DELETE FROM hazards WHERE building_id = :b"), {"b": building})
        conn.execute(sa.text("DELETE FROM inspections WHERE building_id = :b"), {"b": building})
        conn.execute(sa.text("DELETE FROM buildings WHERE id = :b"), {"b": building})
        people = list(
            conn.execute(sa.text("SELECT person_id FROM postings WHERE id = ANY(:p)"), {"p": postings}).scalars()
        )
        conn.execute(sa.text("DELETE FROM postings WHERE id = ANY(:p)"), {"p": postings})
        conn.execute(sa.text("DELETE FROM people WHERE id = ANY(:p)"), {"p": people})


def test_an_inspection_that_waited_for_the_lock_reinspects_the_hazard_the_first_opened(engine: Engine) -> None:
    with engine.begin() as conn:
        building = add_building(conn, "B-LOCK-1")
        postings = [add_posting(conn, "李网格", "grid_worker"), add_posting(conn, "王辅警", "aux_police")]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    second: dict[str, Any] = {}

    def inspect_again() -> None:
        with engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            body = _body(*postings, now - dt.timedelta(minutes=5))
            second["answer"] = inspectfast.record_one(auto, building, body, "second", WHOLE_COUNTY)

    try:
        with engine.connect() as first:
            with first.begin():
                opened = inspectfast.record_one(
                    first, building, _body(*postings, now - dt.timedelta(hours=1)), "first", WHOLE_COUNTY
                )
                assert opened is not None and len(opened["hazards_opened"]) == 1
                thread = threading.Thread(target=inspect_again)
                thread.start()
                deadline = time.monotonic() + 30
                while not _waiting_for_a_lock(engine) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert _waiting_for_a_lock(engine), "the second inspection did not wait for the building"
            # The first commits here; the second takes the lock and reads what it wrote.
            thread.join(timeout=60)
            assert not thread.is_alive()
        answer = second["answer"]
        assert answer is not None and answer["replayed"] is False
        assert answer["hazards_reopened"] == opened["hazards_opened"]
        assert answer["hazards_opened"] == [] and answer["hazards_rectified"] == []
        with engine.connect() as conn:
            statuses = conn.execute(
                sa.text("SELECT status FROM hazards WHERE building_id = :b ORDER BY id"), {"b": building}
            ).scalars()
            assert list(statuses) == ["rectifying"]
    finally:
        _remove(engine, building, postings)
