"""The redistricting job run by a real ``gridmap worker`` on a committed database of its own: the run
goes queued -> running (with progress readable meanwhile) -> done with a draft that validates."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import sqlalchemy as sa

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from boundaries.validate import validate_draft
from gis.analysis import proposal
from gis.core import db
from tests.conftest import scratch_database
from tests.gis.test_jobs import workers


def test_worker_runs_the_proposal_with_progress(database_url: str, tmp_path: Path) -> None:
    with scratch_database(database_url, "redistrict") as url:
        engine = db.make_engine(url, pool_size=2, max_overflow=0)
        try:
            with engine.begin() as conn:
                layers = build_mini_county()
                layers["micro_grid"]["households"] = 160  # 640 a village: two grids each
                publish_layers(
                    conn, layers, note="redistrict test", author="tests",
                    published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                )  # fmt: skip
                run_id = proposal.start_run(conn, "330421001", {"band": [300, 500]}, "tests")
            seen: list[tuple[str, float]] = []
            with workers(url, tmp_path):
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with engine.connect() as conn:
                        run = proposal.get_run(conn, run_id)
                    assert run is not None
                    seen.append((run["status"], run["progress"]))
                    if run["status"] not in ("queued", "running"):
                        break
                    time.sleep(0.05)
            assert run["status"] == "done", run["message"]
            assert run["progress"] == 1.0 and run["started_at"] <= run["finished_at"]
            progress = [p for _s, p in seen]
            assert progress == sorted(progress)  # never goes back
            with engine.connect() as conn:
                validation = validate_draft(conn, run["draft_id"])
                n = conn.execute(
                    sa.text("SELECT count(*) FROM draft_features WHERE draft_id = :d"), {"d": run["draft_id"]}
                ).scalar()
            assert validation.errors == [] and n == run["report"]["proposal"]["units"] == 4
        finally:
            engine.dispose()
