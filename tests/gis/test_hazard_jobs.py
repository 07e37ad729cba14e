"""A hazard's deadline job run by a real ``gridmap worker`` on a committed database: the hazard is
overdue and escalated once, within 5 s of its deadline, and the next level's job is queued."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.fieldwork import hazards
from tests.conftest import scratch_database
from tests.gis.fieldwork_fixtures import add_building
from tests.gis.test_jobs import FIRE_WITHIN_S, workers


@pytest.fixture(scope="module")
def hazard_db(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "hazardjobs") as url:
        eng = db.make_engine(url, pool_size=1, max_overflow=0)
        with eng.begin() as conn:
            publish_layers(conn, build_mini_county(), note="hazard jobs", author="tests",
                           published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))  # fmt: skip
        eng.dispose()
        yield url


@pytest.fixture
def engine(hazard_db: str) -> Iterator[Engine]:
    eng = db.make_engine(hazard_db, pool_size=2, max_overflow=2)
    yield eng
    eng.dispose()


def test_the_worker_marks_a_hazard_overdue_at_its_deadline(hazard_db: str, engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        building = add_building(conn, "B-JOB-1")
    with workers(hazard_db, tmp_path, n=1):
        now = dt.datetime.now(dt.UTC)
        deadline = now + dt.timedelta(seconds=2)
        data = {"category": "gas", "building_id": building, "found_at": now, "deadline": deadline}
        with db.transaction(engine) as session:
            hazard_id = hazards.report(session, data, "tests", now=now)
        end = time.monotonic() + FIRE_WITHIN_S + 10
        while time.monotonic() < end:
            with engine.connect() as conn:
                row = conn.execute(
                    sa.text("SELECT status, escalation_level, overdue_at FROM hazards WHERE id = :id"),
                    {"id": hazard_id},
                ).one()
            if row.status == "overdue":
                break
            time.sleep(0.2)
        time.sleep(1.0)  # long enough for a second run to show
    assert (row.status, row.escalation_level) == ("overdue", "village")
    assert 0 <= (row.overdue_at - deadline).total_seconds() <= FIRE_WITHIN_S
    with engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT count(*) FROM hazard_events WHERE hazard_id = :id AND action = 'overdue'"),
            {"id": hazard_id},
        ).scalar_one()
        waiting = (
            conn.execute(
                sa.text("SELECT args->>'level' FROM procrastinate_jobs WHERE lock = :l AND status = 'todo'"),
                {"l": f"hazard:{hazard_id}"},
            )
            .scalars()
            .all()
        )
    assert events == 1 and waiting == ["village"]
