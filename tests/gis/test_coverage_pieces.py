"""Patrol coverage measured piece by piece (gis.fieldwork.coverage) equals the whole-track test it
replaced: every building within ``cover_m`` of a track measured against the whole track at once, for
tracks of 1 to 100 points (cut at, before and after the pieces' ends), several patrols, and
distances from 5 m to 400 m."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.fieldwork import coverage, patrols
from gis.people.keys import Principal
from gis.people.scope import WHOLE_COUNTY
from gis.spatial.crs import METRIC_EPSG
from tests.fieldwork_data import G1, seed

NOW = dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.UTC)
CALLER = Principal(key_id=0, name="tests", role="admin")

# The statement before pieces: each building against the whole collected tracks.
WHOLE_TRACK = sa.text(
    "WITH tracks AS MATERIALIZED (SELECT ST_Collect(g) AS g FROM (SELECT ST_Transform(CASE WHEN count(*) > 1 "
    "THEN ST_MakeLine(geom ORDER BY t) ELSE ST_Collect(geom) END, :metric) AS g "
    "FROM patrol_points WHERE patrol_id = ANY(:ids) AND NOT flagged GROUP BY patrol_id) s) "
    "SELECT b.id FROM buildings b CROSS JOIN tracks t WHERE b.grid_code = :grid "
    "AND ST_DWithin(ST_Transform(b.geom, :metric), t.g, :m) ORDER BY b.id"
)


@pytest.fixture
def field(connection: Connection, mini_county):  # type: ignore[no-untyped-def]
    return seed(connection)


def _patrol(connection: Connection, person_id: int, walk: list[tuple[float, float]]) -> int:
    start = NOW - dt.timedelta(hours=2)
    patrol = patrols.start(
        connection, {"person_id": person_id, "grid_code": G1, "started_at": start.isoformat()}, CALLER, NOW
    )
    points = [
        {"lon": x, "lat": y, "t": (start + dt.timedelta(seconds=20 * (i + 1))).isoformat()}
        for i, (x, y) in enumerate(walk)
    ]
    patrols.add_points(connection, patrol["id"], {"points": points}, CALLER, now=NOW)
    return int(patrol["id"])


def _walk(n: int, seed_: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed_)
    lon, lat = rng.uniform(120.901, 120.909), rng.uniform(30.831, 30.839)
    out = []
    for _ in range(n):
        lon = float(np.clip(lon + rng.normal(0, 0.0004), 120.9002, 120.9098))
        lat = float(np.clip(lat + rng.normal(0, 0.0004), 30.8302, 30.8398))
        out.append((lon, lat))
    return out


@pytest.mark.parametrize("points", [1, 2, coverage.RUN, coverage.RUN + 1, coverage.RUN + 2, 2 * coverage.RUN + 1, 100])
def test_pieces_cover_the_same_buildings_as_the_whole_track(connection: Connection, field, points: int) -> None:  # type: ignore[no-untyped-def]
    first = _patrol(connection, field.person_id, _walk(points, points))
    second = _patrol(connection, field.person_id, _walk(7, 1000 + points))
    for ids in ([first], [first, second]):
        for cover_m in (5.0, 35.0, 50.0, 120.0, 400.0):
            want = list(
                connection.execute(WHOLE_TRACK, {"ids": ids, "grid": G1, "m": cover_m, "metric": METRIC_EPSG}).scalars()
            )
            got = coverage._coverage(connection, G1, ids, cover_m)
            assert got["buildings"] == len(field.buildings)
            assert got["buildings_covered"] == len(want), (points, ids, cover_m)
            households = connection.execute(
                sa.text("SELECT coalesce(sum(households), 0) FROM buildings WHERE id = ANY(:ids)"), {"ids": want}
            ).scalar_one()
            assert got["households_covered"] == households
    # A single point covers the buildings around it alone; 400 m around a walk covers some, not all.
    assert 0 < coverage._coverage(connection, G1, [first], 400.0)["buildings_covered"] <= len(field.buildings)


def test_no_patrol_covers_nothing(connection: Connection, field) -> None:  # type: ignore[no-untyped-def]
    day = coverage.grid_patrol_coverage(connection, G1, NOW.date(), WHOLE_COUNTY)
    assert day["patrols"] == [] and day["buildings_covered"] == 0 and day["buildings"] == len(field.buildings)
