"""``gridmap verify``: re-derived assignments, tampered rows found and repaired."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from boundaries.generations import close_rows, insert_rows, mark_published, new_generation, publish_layers
from boundaries.sample import build_mini_county
from gis.bulk import import_frame
from gis.core import db
from gis.spatial.verify import VerifyError, check_table, verify


def _load(connection: Connection, n: int = 200, status: str = "closed") -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "external_id": [f"V{i}" for i in range(n)],
            "category": "dispute",
            "source": "grid_patrol",
            "reported_at": "2024-06-01 09:00",
            "status": status,
            "lon": rng.uniform(120.901, 120.939, n),
            "lat": rng.uniform(30.831, 30.849, n),
        }
    )
    import_frame(connection, "incidents", frame)


def test_clean_tables_verify_clean(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    _load(connection)
    connection.execute(
        sa.text("INSERT INTO buildings (code, geom) VALUES ('T1', ST_SetSRID(ST_MakePoint(120.905, 30.833), 4326))")
    )
    results = verify(connection)
    assert [r.table for r in results] == ["incidents", "buildings", "addresses", "hazards"]
    assert [r.checked for r in results] == [200, 1, 0, 0]
    assert all(r.disagreeing == 0 for r in results)


def test_tampered_row_is_found_and_repaired(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    _load(connection)
    victim = connection.execute(sa.text("SELECT id, grid_code, beat_code FROM incidents ORDER BY id LIMIT 1")).one()
    # A writer that bypassed the trigger (bulk flag set) and wrote wrong codes.
    connection.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
    connection.execute(
        sa.text("UPDATE incidents SET grid_code = 'WRONG', beat_code = NULL WHERE id = :id"), {"id": victim.id}
    )
    connection.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, status, geom) "
            "VALUES ('fire', 'other', '2024-06-02', 'reported', ST_SetSRID(ST_MakePoint(120.935, 30.848), 4326))"
        )
    )
    connection.execute(sa.text("SET LOCAL gridmap.bulk = 'off'"))
    bypassed = connection.execute(sa.text("SELECT id FROM incidents WHERE source = 'other'")).scalar_one()

    found = check_table(connection, "incidents")
    assert found.checked == 201 and found.disagreeing == 2
    assert sorted(found.ids.tolist()) == sorted([victim.id, bypassed])
    grid_line = found.sample[(found.sample["id"] == victim.id) & (found.sample["column"] == "grid_code")]
    assert grid_line[["stored", "derived"]].values.tolist() == [["WRONG", victim.grid_code]]
    beat_line = found.sample[(found.sample["id"] == victim.id) & (found.sample["column"] == "beat_code")]
    assert beat_line[["stored", "derived"]].values.tolist() == [[None, victim.beat_code]]

    repaired = verify(connection, ["incidents"], repair=True)[0]
    assert repaired.repaired == 2
    row = connection.execute(sa.text("SELECT grid_code, beat_code FROM incidents WHERE id = :id"), {"id": victim.id})
    assert tuple(row.one()) == (victim.grid_code, victim.beat_code)
    fixed = connection.execute(
        sa.text("SELECT micro_grid_code, generation_id, assign_status FROM incidents WHERE id = :id"), {"id": bypassed}
    ).one()
    assert tuple(fixed) == ("33042100200200202", mini_county.generation, "inside")
    assert check_table(connection, "incidents").disagreeing == 0
    audit = connection.execute(sa.text("SELECT detail FROM audit_log WHERE action = 'assignment.repair'")).scalar_one()
    assert audit == {"incidents": 2}


def test_closed_incidents_keep_their_generation_open_ones_follow_the_new(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    _load(connection, 50, "closed")
    frame = pd.DataFrame(
        {
            "external_id": ["OPEN1"],
            "category": "dispute",
            "source": "grid_patrol",
            "reported_at": "2024-06-01 09:00",
            "status": "dispatched",
            "lon": [120.905],
            "lat": [30.833],
        }
    )
    import_frame(connection, "incidents", frame)
    # A new generation moves the south-west grid boundary west; nothing is reassigned (as if a
    # publish had been interrupted): closed incidents must still verify, the open one must not.
    grids = mini_county.grids.copy()
    from shapely.geometry import box

    grids.loc[grids["code"] == "330421001001001", "geometry"] = box(120.90, 30.83, 120.904, 30.84)
    grids.loc[grids["code"] == "330421001001002", "geometry"] = box(120.904, 30.83, 120.92, 30.84)
    micro = mini_county.micro_grids.copy()
    micro = micro[~micro["parent_code"].isin(["330421001001001", "330421001001002"])]
    gen = new_generation(connection, ["grid", "micro_grid"], note="redraw", author="tests")
    close_rows(connection, "grid", None, gen)
    close_rows(connection, "micro_grid", None, gen)
    insert_rows(connection, "grid", grids, gen)
    insert_rows(connection, "micro_grid", micro, gen)
    mark_published(connection, gen, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))

    result = check_table(connection, "incidents")
    open_id = connection.execute(sa.text("SELECT id FROM incidents WHERE external_id = 'OPEN1'")).scalar_one()
    assert result.ids.tolist() == [open_id]
    verify(connection, ["incidents"], repair=True)
    row = connection.execute(
        sa.text("SELECT grid_code, micro_grid_code, generation_id FROM incidents WHERE id = :id"), {"id": open_id}
    ).one()
    assert tuple(row) == ("330421001001002", None, gen)


def test_unknown_table_is_refused(connection: Connection) -> None:
    with pytest.raises(VerifyError, match="not a point table"):
        check_table(connection, "areas")


def test_cli_exits_1_whenever_a_row_disagrees(database_url: str) -> None:
    # The command runs in its own process on its own connection: the data must be committed, so
    # it gets a database of its own. main() is what the installed `gridmap` script calls.
    root = Path(__file__).resolve().parents[2]
    with db.scratch_database(database_url, "verifycli") as scratch:
        eng = db.make_engine(scratch)
        try:
            with eng.begin() as conn:
                publish_layers(
                    conn,
                    build_mini_county(),
                    note="mini",
                    author="tests",
                    published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                )
                conn.execute(
                    sa.text("INSERT INTO buildings (code, geom) VALUES ('C1', ST_Point(120.905, 30.833, 4326))")
                )
            env = {**os.environ, "GRIDMAP_DATABASE_URL": scratch, "PYTHONPATH": str(root)}

            def run(*args: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [sys.executable, "-c", "from api.cli import main; main()", "verify", *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )

            clean = run()
            assert clean.returncode == 0, clean.stdout + clean.stderr
            with eng.begin() as conn:
                conn.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
                conn.execute(sa.text("UPDATE buildings SET grid_code = 'WRONG'"))
            found = run()
            assert found.returncode == 1, found.stdout + found.stderr
            assert "1 rows disagree" in found.stdout and "WRONG" in found.stdout
            repaired = run("--repair")
            assert repaired.returncode == 1, repaired.stdout + repaired.stderr
            assert "1 rows disagreed and were repaired" in repaired.stdout
            again = run()
            assert again.returncode == 0, again.stdout + again.stderr
        finally:
            eng.dispose()
