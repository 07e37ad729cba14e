"""Field-work coverage against shapely on the same data, speed flags, visit coverage and the quota."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import coverage, patrols, visits
from gis.fieldwork.errors import FieldworkInputError
from gis.people.keys import Principal
from gis.people.scope import WHOLE_COUNTY
from gis.spatial.crs import to_metric
from tests.fieldwork_data import G1, seed, walk_today

NOW = dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.UTC)  # 12:00 county time
CALLER = Principal(key_id=0, name="tests", role="admin")


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def _walk(n: int, seed_: int) -> list[tuple[float, float]]:
    """A random walk across G1, about 5 m/s at one point every 10 s."""
    rng = np.random.default_rng(seed_)
    lon, lat, heading = 120.9012, 30.8312, 0.6
    out = []
    for _ in range(n):
        heading += rng.normal(0, 0.5)
        lon = float(np.clip(lon + 0.00045 * np.cos(heading), 120.9002, 120.9098))
        lat = float(np.clip(lat + 0.00040 * np.sin(heading), 30.8302, 30.8398))
        out.append((lon, lat))
    return out


def _shapely_share(field_positions: list[tuple[float, float]], tracks: list[list[tuple[float, float]]]) -> int:
    """Buildings within 50 m of any track, worked out in Python on the same metric projection."""
    bx, by = to_metric(np.array([p[0] for p in field_positions]), np.array([p[1] for p in field_positions]))
    lines = []
    for track in tracks:
        tx, ty = to_metric(np.array([p[0] for p in track]), np.array([p[1] for p in track]))
        lines.append(shapely.LineString(np.column_stack([tx, ty])))
    union = shapely.MultiLineString(lines)
    distances = shapely.distance(shapely.points(np.column_stack([bx, by])), union)
    assert not np.any(np.abs(distances - 50.0) < 1e-3)  # no building on the edge: the figures are robust
    return int(np.sum(distances <= 50.0))


@pytest.fixture
def field(connection: Connection, mini_county):  # type: ignore[no-untyped-def]
    return seed(connection)


def test_patrol_coverage_matches_shapely(connection: Connection, field) -> None:  # type: ignore[no-untyped-def]
    start = NOW - dt.timedelta(hours=3)
    patrol = patrols.start(
        connection, {"person_id": field.person_id, "grid_code": G1, "started_at": _iso(start)}, CALLER, NOW
    )
    walk = _walk(300, 7)
    points = [
        {"lon": x, "lat": y, "t": _iso(start + dt.timedelta(seconds=10 * (i + 1)))} for i, (x, y) in enumerate(walk)
    ]
    # A jump of ~10 km in 10 s: flagged, kept out of the track and of coverage.
    points[150] = {**points[150], "lon": 121.0}
    out = patrols.add_points(connection, patrol["id"], {"points": points}, CALLER, now=NOW)
    assert out["flagged"] == [150]
    assert out["stored"] == 300 and out["flagged_count"] == 1

    got = coverage.patrol_coverage(connection, patrol["id"], WHOLE_COUNTY)
    kept = [p for i, p in enumerate(walk) if i != 150]
    expected = _shapely_share(field.positions, [kept])
    assert got["buildings"] == len(field.buildings)
    assert got["buildings_covered"] == expected
    assert 0 < expected < len(field.buildings)
    assert got["share"] == round(expected / len(field.buildings), 4)

    # A second patrol the same day: the grid's day coverage is the union of both tracks.
    second = patrols.start(
        connection, {"person_id": field.person_id, "grid_code": G1, "started_at": _iso(start)}, CALLER, NOW
    )
    walk2 = _walk(200, 11)
    patrols.add_points(
        connection,
        second["id"],
        {
            "points": [
                {"lon": x, "lat": y, "t": _iso(start + dt.timedelta(seconds=10 * (i + 1)))}
                for i, (x, y) in enumerate(walk2)
            ]
        },
        CALLER,
        now=NOW,
    )
    day = coverage.grid_patrol_coverage(connection, G1, start.astimezone(COUNTY_TZ).date(), WHOLE_COUNTY)
    assert day["patrols"] == [patrol["id"], second["id"]]
    assert day["buildings_covered"] == _shapely_share(field.positions, [kept, walk2])


def test_track_is_simplified_and_length_measured(connection: Connection, field) -> None:  # type: ignore[no-untyped-def]
    start = NOW - dt.timedelta(hours=1)
    patrol = patrols.start(
        connection, {"person_id": field.person_id, "grid_code": G1, "started_at": _iso(start)}, CALLER, NOW
    )
    # 50 points on a straight line: the display track keeps its two ends.
    pts = [
        {"lon": 120.901 + i * 0.0001, "lat": 30.835, "t": _iso(start + dt.timedelta(seconds=5 * i))} for i in range(50)
    ]
    out = patrols.add_points(connection, patrol["id"], {"points": pts}, CALLER, now=NOW)
    vertices = connection.execute(
        sa.text("SELECT ST_NPoints(track) FROM patrols WHERE id = :id"), {"id": patrol["id"]}
    ).scalar_one()
    assert vertices == 2
    x, _ = to_metric(np.array([120.901, 120.901 + 49 * 0.0001]), np.array([30.835, 30.835]))
    assert out["length_m"] == pytest.approx(float(x[1] - x[0]), abs=0.5)


def test_speed_flags_follow_the_last_kept_point() -> None:
    t = np.array([0.0, 10.0, 20.0, 30.0, 30.0])
    # 100 m per 10 s (36 km/h); a 5 km jump (1800 km/h); back on the path; a repeated fix.
    lon = np.array([120.90, 120.90104, 120.955, 120.90312, 120.90312])
    lat = np.full(5, 30.835)
    flagged, speed = patrols.speed_flags(t, lon, lat, 150.0)
    assert flagged.tolist() == [False, False, True, False, False]
    assert speed[1] == pytest.approx(36.0, rel=0.05)
    assert speed[3] == pytest.approx(36.0, rel=0.05)  # measured from the last kept point, over 20 s


def test_late_batch_gives_the_same_flags(connection: Connection, field) -> None:  # type: ignore[no-untyped-def]
    start = NOW - dt.timedelta(hours=1)
    pts = [
        {"lon": 120.901 + i * 0.0002, "lat": 30.835, "t": _iso(start + dt.timedelta(seconds=10 * i))} for i in range(20)
    ]
    pts[5]["lon"] = 120.95
    a = patrols.start(
        connection, {"person_id": field.person_id, "grid_code": G1, "started_at": _iso(start)}, CALLER, NOW
    )
    patrols.add_points(connection, a["id"], {"points": pts}, CALLER, now=NOW)
    b = patrols.start(
        connection, {"person_id": field.person_id, "grid_code": G1, "started_at": _iso(start)}, CALLER, NOW
    )
    patrols.add_points(connection, b["id"], {"points": pts[10:]}, CALLER, now=NOW)
    patrols.add_points(connection, b["id"], {"points": pts[:10]}, CALLER, now=NOW)
    again = patrols.add_points(connection, b["id"], {"points": pts[:10]}, CALLER, now=NOW)  # a resend
    assert again["stored"] == 0 and again["duplicates"] == 10

    def flags(pid: int) -> list[bool]:
        q = sa.text("SELECT flagged FROM patrol_points WHERE patrol_id = :id ORDER BY t")
        return list(connection.execute(q, {"id": pid}).scalars())

    assert flags(a["id"]) == flags(b["id"])
    assert flags(a["id"]).count(True) == 1


def test_future_point_refused_whole(connection: Connection, field) -> None:  # type: ignore[no-untyped-def]
    patrol = patrols.start(connection, {"person_id": field.person_id, "grid_code": G1}, CALLER, NOW)
    pts = [
        {"lon": 120.901, "lat": 30.835, "t": _iso(NOW - dt.timedelta(seconds=1))},
        {"lon": 120.902, "lat": 30.835, "t": _iso(NOW + dt.timedelta(hours=1))},
    ]
    with pytest.raises(FieldworkInputError) as err:
        patrols.add_points(connection, patrol["id"], {"points": pts}, CALLER, now=NOW)
    assert err.value.field == "points[1].t"
    count = connection.execute(
        sa.text("SELECT count(*) FROM patrol_points WHERE patrol_id = :id"), {"id": patrol["id"]}
    )
    assert count.scalar() == 0


def test_not_visited_and_quota(connection: Connection, field) -> None:  # type: ignore[no-untyped-def]
    caller = Principal(key_id=0, name="tests", role="admin", person_id=field.person_id)
    ages = {0: 1, 1: 5, 2: 29, 3: 40, 4: 400}  # building index -> days since its visit
    rows = [
        {"client_id": f"c{i}", "building_id": field.buildings[i], "at": _iso(NOW - dt.timedelta(days=d))}
        for i, d in ages.items()
    ]
    visits.record(connection, {"visits": rows}, caller, NOW)
    got = coverage.grid_unvisited(connection, G1, 30, WHOLE_COUNTY, now=NOW)
    visited = {field.buildings[i] for i, d in ages.items() if d <= 30}
    assert got["buildings_visited"] == len(visited) == 3
    assert got["buildings_not_visited"] == len(field.buildings) - 3
    missed = {m["building_id"] for m in got["not_visited"]}
    assert missed == set(field.buildings) - visited
    hh = connection.execute(sa.text("SELECT households FROM buildings WHERE id = ANY(:ids)"), {"ids": list(missed)})
    assert got["households_not_visited"] == sum(hh.scalars())
    last = {m["building_id"]: m["last_visit_at"] for m in got["not_visited"]}
    assert last[field.buildings[3]] == NOW - dt.timedelta(days=40)
    assert last[field.buildings[10]] is None
    by_grid = coverage.unvisited_by_grid(connection, 30, WHOLE_COUNTY, now=NOW)
    assert by_grid[G1]["not_visited"] == got["buildings_not_visited"]

    today = NOW.astimezone(COUNTY_TZ).date()
    more = [
        {"client_id": f"d{i}", "building_id": field.buildings[i], "at": _iso(NOW - dt.timedelta(hours=1))}
        for i in range(4)
    ]
    visits.record(connection, more, caller, NOW)
    day = coverage.worker_day(connection, field.person_id, today, 10, WHOLE_COUNTY)
    assert day["visits"] == 4 and day["short"] == 6 and not day["met"]
    report = coverage.quota_report(connection, today, 4, WHOLE_COUNTY)
    worker = next(w for w in report["list"] if w["person_id"] == field.person_id)
    assert worker["visits"] == 4 and worker["met"]


def test_county_layer_text_equals_the_python_layer(connection: Connection, field) -> None:  # type: ignore[no-untyped-def]
    import orjson

    from gis.fieldwork import layers

    caller = Principal(key_id=0, name="tests", role="admin", person_id=field.person_id)
    now = dt.datetime.now(dt.UTC)
    old = [
        {"client_id": f"o{i}", "building_id": field.buildings[i], "at": _iso(now - dt.timedelta(days=45 + i))}
        for i in range(3)
    ]
    new = [{"client_id": "n0", "building_id": field.buildings[0], "at": _iso(now - dt.timedelta(days=50))}]
    visits.record(connection, old, caller, now)
    visits.record(connection, new, caller, now)  # older than the stored one: the latest visit stays
    last = connection.execute(
        sa.text("SELECT last_visited_at FROM buildings WHERE id = :id"), {"id": field.buildings[0]}
    ).scalar_one()
    assert last == dt.datetime.fromisoformat(old[0]["at"])
    text = orjson.loads(layers.unvisited_points_json(connection, 30, WHOLE_COUNTY))
    python = orjson.loads(orjson.dumps(layers.unvisited_points(connection, 30, WHOLE_COUNTY)))

    def normal(collection: dict) -> list:  # type: ignore[type-arg]
        return [
            (
                f["geometry"]["coordinates"],
                {
                    **f["properties"],
                    "last_visit_at": f["properties"]["last_visit_at"]
                    and dt.datetime.fromisoformat(f["properties"]["last_visit_at"]),
                },
            )
            for f in collection["features"]
        ]

    assert normal(text) == normal(python)
    ids = {f["properties"]["id"] for f in text["features"]}
    assert set(field.buildings) <= ids  # none visited within 30 days


def test_flag_distance_agrees_with_the_geodesic() -> None:
    from gis.spatial.crs import metres_between

    rng = np.random.default_rng(3)
    for _ in range(50):
        lon, lat = 120.9 + rng.uniform(0, 0.1), 30.8 + rng.uniform(0, 0.1)
        dlon, dlat = rng.normal(0, 0.01, 2)
        exact = metres_between(lon, lat, lon + dlon, lat + dlat)
        assert patrols._metres(lon, lat, lon + dlon, lat + dlat) == pytest.approx(exact, rel=1e-3)


def test_layers_in_gcj02_display(connection: Connection, field) -> None:  # type: ignore[no-untyped-def]
    from gis.fieldwork import layers
    from gis.spatial.crs import wgs84_to_gcj02

    now = dt.datetime.now(dt.UTC)
    start, times = walk_today(now, 30, 6, 30)
    patrol = patrols.start(
        connection, {"person_id": field.person_id, "grid_code": G1, "started_at": _iso(start)}, CALLER, now
    )
    pts = [{"lon": 120.901 + i * 0.0003, "lat": 30.835 + (i % 2) * 0.0003, "t": _iso(t)} for i, t in enumerate(times)]
    patrols.add_points(connection, patrol["id"], {"points": pts}, CALLER, now=now)
    visits.record(
        connection, {"client_id": "g", "person_id": field.person_id, "building_id": field.buildings[0]}, CALLER, now
    )
    day = now.astimezone(COUNTY_TZ).date()
    for make in (layers.tracks, layers.visits):
        wgs = make(connection, day, WHOLE_COUNTY, "wgs84")["features"][0]["geometry"]["coordinates"]
        gcj = make(connection, day, WHOLE_COUNTY, "gcj02")["features"][0]["geometry"]["coordinates"]
        first_wgs, first_gcj = (wgs[0], gcj[0]) if make is layers.tracks else (wgs, gcj)
        expected = wgs84_to_gcj02(*first_wgs)
        assert first_gcj == pytest.approx(list(expected), abs=2e-5)
