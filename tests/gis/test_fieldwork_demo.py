"""The demo's visits and patrols (demo.jiashan.fieldwork) on the mini county with one grid worker."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from demo.jiashan.fieldwork import PATROL_DAYS, VISIT_DAYS, add_fieldwork
from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import coverage
from gis.people.scope import WHOLE_COUNTY
from tests.fieldwork_data import G1, seed


def test_demo_visits_and_patrols_follow_staff_and_buildings(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    field = seed(connection)
    end = pd.Timestamp.now(tz="UTC")
    counts = add_fieldwork(connection, end, seed=3)
    assert counts["visits"] == connection.execute(sa.text("SELECT count(*) FROM visits")).scalar_one()
    per_day = connection.execute(
        sa.text(
            "SELECT (at AT TIME ZONE 'Asia/Shanghai')::date AS d, count(*) FROM visits WHERE person_id = :p GROUP BY 1"
        ),
        {"p": field.person_id},
    ).all()
    assert len(per_day) == VISIT_DAYS
    assert all(6 <= n <= 14 for _, n in per_day)
    today = end.tz_convert(COUNTY_TZ).date()
    assert max(d for d, _ in per_day) == today - dt.timedelta(days=1)
    # Only buildings of the worker's grid, with the building's codes, near the building.
    outside = connection.execute(
        sa.text(
            "SELECT count(*) FROM visits v JOIN buildings b ON b.id = v.building_id "
            "WHERE b.grid_code <> :g OR v.grid_code <> b.grid_code "
            "OR ST_Distance(v.geom::geography, b.geom::geography) > 60"
        ),
        {"g": G1},
    ).scalar_one()
    assert outside == 0
    kinds = dict(connection.execute(sa.text("SELECT kind, count(*) FROM visits GROUP BY 1")).all())
    assert set(kinds) == {"routine", "night", "care", "follow_up"} and kinds["routine"] > kinds["night"]
    # Patrols: at most one a day for the last days, each with a display track inside the grid's reach.
    patrols = connection.execute(
        sa.text("SELECT id, point_count, ST_NPoints(track) AS kept, length_m, started_at FROM patrols")
    ).all()
    assert 1 <= counts["patrols"] == len(patrols) <= PATROL_DAYS  # seed 3 patrols at least once
    for p in patrols:
        assert p.point_count > 2 and 2 <= p.kept <= p.point_count and p.length_m > 0
        assert p.started_at < end
    # The figures read back through the product's own coverage functions.
    day = coverage.worker_day(connection, field.person_id, today - dt.timedelta(days=1), 10, WHOLE_COUNTY)
    assert 6 <= day["visits"] <= 14
    grid = coverage.grid_unvisited(connection, G1, 30, WHOLE_COUNTY)
    assert grid["buildings_visited"] > 0
