"""In-process point lookup: the trigger's edge rule, CRS conversion, generations over time,
staff masking, input checks, and cache invalidation on NOTIFY (committed, in a database of its own)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from shapely.geometry import box
from sqlalchemy.engine import Connection, Engine

from boundaries.generations import publish_layers
from boundaries.sample import X0, X1, XM, Y0, Y1, YM, build_mini_county
from gis.core import db
from gis.core.notify import Listener, conninfo_from_url
from gis.spatial.crs import from_wgs84
from gis.spatial.lookup import LookupService
from gis.spatial.lookupinput import LookupInputError, parse_as_of, parse_point

GX = (X0 + XM) / 2  # edge between grids 001 and 002 of town 1
MY = (Y0 + YM) / 2
GRID_W = "330421001001001"  # south-west grid of town 1
GRID_E = "330421001001002"  # its eastern neighbour
M_PER_DEG_LON = 95_500.0


def _sql_assign(conn: Connection, lon: list[float], lat: list[float]) -> list[dict[str, object]]:
    rows = conn.execute(
        sa.text(
            "SELECT (a).* FROM (SELECT gridmap_assign(ST_SetSRID(ST_MakePoint(x, y), 4326), now()) AS a, i "
            "FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, i)) s ORDER BY i"
        ),
        {"xs": lon, "ys": lat},
    ).all()
    return [dict(r._mapping) for r in rows]


def test_points_on_edges_and_vertices_agree_with_the_trigger(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    xs = [X0, GX, XM, (XM + X1) / 2, X1, 120.913, 120.927]
    ys = [Y0, MY, YM, (YM + Y1) / 2, Y1, 30.8333]
    lon = [x for x in xs for _ in ys] + [GX] * 5 + [120.911] * 3
    lat = [y for _ in xs for y in ys] + list(np.linspace(Y0, Y1, 5)) + [MY, YM, Y0]
    service = LookupService()
    answers = service.lookup(connection, lon, lat)
    expected = _sql_assign(connection, lon, lat)
    for got, want in zip(answers, expected, strict=True):
        assert got["status"] == want["assign_status"]
        for layer in ("town", "village", "grid", "micro_grid", "beat", "station"):
            unit = got[layer]
            assert (unit["code"] if unit else None) == want[f"{layer}_code"], (got["lon"], got["lat"], layer)
    # On the shared edge of two grids, the smaller code (the western one) wins, once.
    on_edge = service.lookup(connection, [GX], [30.834])[0]
    assert on_edge["grid"]["code"] == GRID_W
    assert on_edge["grid"]["name"] == f"{GRID_W[:-3]}第1网格"
    assert on_edge["county"] == {"code": "330421", "name": "嘉善县(测试)"}
    assert on_edge["generation"] == mini_county.generation


def test_single_point_path_equals_the_vectorised_one(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    lon = rng.uniform(X0 - 0.0008, X1 + 0.0008, 400)
    lat = rng.uniform(Y0 - 0.0008, Y1 + 0.0008, 400)
    lon[:60] = rng.choice([X0, GX, XM, X1, 120.913, 120.927], 60)  # on edges, where ties are decided
    lat[60:120] = rng.choice([Y0, MY, YM, Y1], 60)
    service = LookupService()
    batch = service.lookup(connection, lon, lat)
    statuses = set()
    for i in range(len(lon)):
        one = service.lookup_one(connection, float(lon[i]), float(lat[i]))
        one.pop("input")
        assert one == batch[i], (lon[i], lat[i])
        statuses.add(one["status"])
    assert statuses == {"inside", "snapped", "outside_jurisdiction"}


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_gcj02_and_bd09_give_the_wgs84_answer_near_an_edge(connection: Connection, mini_county, crs: str) -> None:  # type: ignore[no-untyped-def]
    service = LookupService()
    # 30 m west of the edge between two grids: the offset (~500 m) would cross it.
    lon, lat = GX - 30 / M_PER_DEG_LON, 30.834
    want = service.lookup_one(connection, lon, lat, "wgs84")
    assert want["grid"]["code"] == GRID_W
    clon, clat = from_wgs84(lon, lat, crs)
    got = service.lookup_one(connection, clon, clat, crs)
    assert got["grid"] == want["grid"] and got["micro_grid"] == want["micro_grid"] and got["beat"] == want["beat"]
    assert got["lon"] == pytest.approx(lon, abs=1e-6) and got["lat"] == pytest.approx(lat, abs=1e-6)
    assert got["input"] == {"lon": clon, "lat": clat, "crs": crs}
    # Taken as WGS-84, the raw converted numbers land in the other grid: conversion did happen.
    raw = service.lookup_one(connection, clon, clat, "wgs84")
    assert raw["grid"]["code"] != GRID_W


def _moved_layers(shift: float) -> dict[str, object]:
    """The mini county with the edge between GRID_W and GRID_E (and their micro-grids) moved east."""
    layers = build_mini_county()
    for layer in ("grid", "micro_grid"):
        gdf = layers[layer].copy()
        for i, row in gdf.iterrows():
            minx, miny, maxx, maxy = row.geometry.bounds
            if str(row["code"]).startswith(GRID_W):
                gdf.at[i, "geometry"] = box(minx, miny, maxx + shift, maxy)
            elif str(row["code"]).startswith(GRID_E):
                gdf.at[i, "geometry"] = box(minx + shift, miny, maxx, maxy)
        layers[layer] = gdf
    return {k: layers[k] for k in ("grid", "micro_grid")}


def test_as_of_uses_the_generation_in_force(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    second = publish_layers(
        connection,
        _moved_layers(0.002),  # type: ignore[arg-type]
        note="move an edge",
        author="tests",
        published_at=dt.datetime(2024, 6, 1, 9, tzinfo=dt.UTC),
    )
    service = LookupService()
    point = (GX + 0.001, 30.834)  # east of the old edge, west of the new one
    assert service.lookup(connection, [point[0]], [point[1]])[0]["grid"]["code"] == GRID_W
    old = service.lookup(connection, [point[0]], [point[1]], at=parse_as_of("2023-12-31"))[0]
    assert old["grid"]["code"] == GRID_E and old["generation"] == mini_county.generation
    now = service.lookup(connection, [point[0]], [point[1]], at=parse_as_of("2024-06-01"))[0]
    assert now["generation"] == second
    assert service.generation_at(connection, parse_as_of("2024-05-31")) == mini_county.generation


def test_staff_come_masked_below_dispatcher(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    connection.execute(
        sa.text(
            "INSERT INTO staff (grid_code, role, name, phone) VALUES "
            "(:g, 'aux_police', '赵六', '13900000003'), (:g, 'grid_leader', '王五', '13900000001'), "
            "(:g, 'grid_worker', '李四', '13900000002')"
        ),
        {"g": GRID_W},
    )
    service = LookupService()
    full = service.lookup(connection, [120.905], [30.834], sees_personal_data=True)[0]["staff"]
    assert [s["role"] for s in full] == ["grid_leader", "grid_worker", "aux_police"]
    # Each member says which area they are posted to (gis.people: the team spans grid, village, beat ...).
    posted = {"layer": "grid", "area_code": GRID_W}
    assert full[0] == {"role": "grid_leader", "name": "王五", "phone": "13900000001", **posted}
    masked = service.lookup(connection, [120.905], [30.834])[0]["staff"]
    assert masked[0] == {"role": "grid_leader", "name": "王*", "phone": "139****0001", **posted}


def test_outside_and_swapped_points(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    service = LookupService()
    far = service.lookup_one(connection, 121.3, 31.2)
    assert far["status"] == "outside_jurisdiction" and far["grid"] is None and far["county"] is None
    assert "hint" not in far
    near = service.lookup_one(connection, X0 - 20 / M_PER_DEG_LON, 30.832)
    assert near["status"] == "snapped" and near["snap_distance_m"] == pytest.approx(20, abs=1.5)
    with pytest.raises(LookupInputError, match="look swapped") as err:
        service.lookup_one(connection, 30.834, 120.905)
    assert err.value.param == "lat"
    with pytest.raises(LookupInputError) as err:
        service.lookup_one(connection, 200.0, 30.0)
    assert err.value.param == "lon" and "swapped" not in str(err.value)


@pytest.mark.parametrize(
    ("lon", "lat", "crs", "param", "reason"),
    [
        (None, 30.8, "wgs84", "lon", "required"),
        ("abc", 30.8, "wgs84", "lon", "not a number"),
        (120.9, "nan", "wgs84", "lat", "not a finite number"),
        (120.9, float("inf"), "wgs84", "lat", "not a finite number"),
        (120.9, 30.8, "utm", "crs", "unknown coordinate system"),
    ],
)
def test_parse_point_names_the_parameter(lon: object, lat: object, crs: str, param: str, reason: str) -> None:
    with pytest.raises(LookupInputError, match=reason) as err:
        parse_point(lon, lat, crs)
    assert err.value.param == param


def test_parse_as_of() -> None:
    # A bare date is the end of that day: the next county midnight (gis.core.timeparse).
    assert parse_as_of("2024-03-01") == dt.datetime(2024, 3, 2, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert parse_as_of("2024-03-01T08:00:00Z") == dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)
    assert parse_as_of(None) is None
    with pytest.raises(LookupInputError, match="as_of"):
        parse_as_of("yesterday")


# --- invalidation on NOTIFY: needs committed publications, so a database of its own ----------


@pytest.fixture
def scratch_engine(database_url: str) -> Iterator[Engine]:
    """A migrated database of its own: NOTIFY needs committed publications."""
    with db.scratch_database(database_url, "lookup_notify") as url:
        engine = db.make_engine(url, pool_size=2, max_overflow=2)
        try:
            yield engine
        finally:
            engine.dispose()


def _wait(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_notify_invalidates_the_cache_and_survives_a_dropped_connection(scratch_engine: Engine) -> None:
    with scratch_engine.begin() as conn:
        publish_layers(
            conn, build_mini_county(), note="first", author="tests", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
    service = LookupService(stale_after_s=3600)  # only a notification can refresh it
    payloads: list[str | None] = []

    def on_change(payload: str | None) -> None:
        payloads.append(payload)
        service.invalidate(payload)

    listener = Listener(conninfo_from_url(scratch_engine.url), on_change, poll_s=0.1, max_backoff_s=0.5)
    listener.on_state = lambda up: setattr(service, "listening", up)
    listener.start()
    try:
        assert listener.connected.wait(10)
        point = ([GX + 0.001], [30.834])
        with scratch_engine.connect() as conn:
            assert service.lookup(conn, *point)[0]["grid"]["code"] == GRID_E

        with scratch_engine.begin() as conn:
            second = publish_layers(conn, _moved_layers(0.002), note="moved", author="tests")  # type: ignore[arg-type]
        assert _wait(lambda: any(p and json.loads(p).get("generation") == second for p in payloads))
        with scratch_engine.connect() as conn:
            answer = service.lookup(conn, *point)[0]
        assert answer["grid"]["code"] == GRID_W and answer["generation"] == second

        # The database drops the listener's connection (as in a restart): it reconnects, and
        # since notifications may have been missed meanwhile it invalidates on reconnect.
        before = listener.reconnects
        with scratch_engine.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
            )
        assert _wait(lambda: listener.reconnects > before and listener.connected.is_set())
        # Staff changes notify too (trigger on the staff table).
        count = len(payloads)
        with scratch_engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO staff (grid_code, role, name) VALUES (:g, 'grid_worker', '钱七')"), {"g": GRID_W}
            )
        assert _wait(lambda: any(p and "staff" in p for p in payloads[count:]))
        with scratch_engine.connect() as conn:
            staff = service.lookup(conn, *point)[0]["staff"]
        assert staff == [{"role": "grid_worker", "name": "钱*", "phone": None, "layer": "grid", "area_code": GRID_W}]
    finally:
        listener.stop()
    assert not listener.connected.is_set()


def test_loads_are_reported_once_per_generation_when_threads_miss_together(scratch_engine: Engine) -> None:
    """The API takes each load out of the collector's passes (api.heap); that full collection must
    run once per generation loaded, not once per request that happened to miss at the same time."""
    with scratch_engine.begin() as conn:
        first = publish_layers(
            conn, build_mini_county(), note="first", author="tests", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
    calls: list[int] = []
    service = LookupService(on_loaded=lambda: calls.append(1))
    start = threading.Barrier(6)
    answers: list[str] = []

    def ask() -> None:
        start.wait()
        with scratch_engine.connect() as conn:
            answers.append(service.lookup(conn, [GX + 0.001], [30.834])[0]["grid"]["code"])

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == [GRID_E] * 6
    assert len(calls) == 2  # the trees and the names of the one generation
    assert service.loaded_generations() == [first]

    with scratch_engine.connect() as conn:
        service.lookup(conn, [GX - 0.001], [30.834])
    assert len(calls) == 2  # warm: nothing loaded again

    with scratch_engine.begin() as conn:
        second = publish_layers(conn, _moved_layers(0.002), note="moved", author="tests")  # type: ignore[arg-type]
    service.invalidate()
    with scratch_engine.connect() as conn:
        assert service.lookup(conn, [GX + 0.001], [30.834])[0]["generation"] == second
    assert len(calls) == 4
    assert service.loaded_generations() == sorted([first, second])


def test_as_of_lookups_keep_a_bounded_cache_and_the_generation_in_force(
    scratch_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gis.spatial.lookup.MAX_CACHED_GENERATIONS", 2)
    gens = []
    with scratch_engine.begin() as conn:
        for year, shift in ((2020, 0.0), (2021, 0.001), (2022, 0.002), (2023, 0.003)):
            layers = build_mini_county() if shift == 0 else _moved_layers(shift)
            at = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
            gens.append(publish_layers(conn, layers, note=str(year), author="tests", published_at=at))  # type: ignore[arg-type]
    current = gens[-1]
    service = LookupService()
    with scratch_engine.connect() as conn:
        assert service.lookup(conn, [GX + 0.001], [30.834])[0]["generation"] == current
        for year, gen in ((2020, gens[0]), (2021, gens[1]), (2022, gens[2]), (2020, gens[0]), (2021, gens[1])):
            answer = service.lookup(conn, [GX + 0.001], [30.834], at=dt.datetime(year, 6, 1, tzinfo=dt.UTC))[0]
            assert answer["generation"] == gen
            loaded = service.loaded_generations()
            assert len(loaded) <= 2 and current in loaded and gen in loaded
