from __future__ import annotations

import datetime as dt
import math
from typing import Any

import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.outputs.tiles import (
    BUFFER,
    CLUSTER_CELL,
    CLUSTER_MAX_ZOOM,
    EXTENT,
    SPATIAL_INDEX_MIN_ZOOM,
    TileRequest,
    render_tile,
    tile_bounds,
)

UTC = dt.UTC


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def add_incidents(conn: Connection, count: int, year: int) -> None:
    """``count`` incidents spread over the mini county and over ``year``."""
    conn.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, reporter_name, reporter_phone, geom) "
            "SELECT '垃圾堆放', 'app', make_timestamptz(:y, 1, 1, 0, 0, 0, 'UTC') + (i % 360) * interval '1 day', "
            "'张三丰', '13812345678', "
            "ST_SetSRID(ST_MakePoint(120.901 + (i % 38) * 0.001, 30.831 + (i / 38 % 19) * 0.001), 4326) "
            "FROM generate_series(0, :n - 1) AS i"
        ),
        {"n": count, "y": year},
    )


def decode(data: bytes) -> dict[str, list[dict[str, Any]]]:
    layers = mapbox_vector_tile.decode(data)
    return {name: layer["features"] for name, layer in layers.items()}


def test_boundary_tiles_carry_codes_and_names(client: TestClient, mini_county: Any, make_key: Any) -> None:
    x, y = tile_of(120.92, 30.84, 12)
    response = client.get(f"/tiles/grids/12/{x}/{y}.mvt", headers=make_key("viewer"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    features = decode(response.content)["grids"]
    assert sorted(f["properties"]["code"] for f in features) == sorted(mini_county.grids["code"])
    names = {f["properties"]["code"]: f["properties"]["name"] for f in features}
    assert names["330421001001001"] == "330421001001第1网格"
    for layer, expected in (("towns", 2), ("villages", 4), ("micro_grids", 16), ("stations", 2), ("beats", 3)):
        data = client.get(f"/tiles/{layer}/12/{x}/{y}.mvt", headers=make_key("viewer")).content
        assert len(decode(data)[layer]) == expected, layer


def test_low_zoom_clusters_incidents_with_counts_in_time_window(
    client: TestClient, connection: Connection, mini_county: Any, make_key: Any
) -> None:
    add_incidents(connection, 700, 2024)
    add_incidents(connection, 50, 2023)
    x, y = tile_of(120.92, 30.84, 10)
    headers = make_key("viewer")
    response = client.get(
        f"/tiles/incidents/10/{x}/{y}.mvt",
        params={"start": "2024-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"},
        headers=headers,
    )
    assert response.status_code == 200
    features = decode(response.content)["incidents"]
    assert sum(int(f["properties"]["count"]) for f in features) == 700
    assert len(features) < 700  # aggregated per pixel, not one feature per incident
    every_year = decode(client.get(f"/tiles/incidents/10/{x}/{y}.mvt", headers=headers).content)["incidents"]
    assert sum(int(f["properties"]["count"]) for f in every_year) == 750


def test_cluster_positions_match_postgis_geometry(connection: Connection, mini_county: Any) -> None:
    # One incident: the pixel arithmetic must put it in the cell where ST_AsMVTGeom puts the point.
    connection.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, geom) "
            "VALUES ('x', 'app', now(), ST_SetSRID(ST_MakePoint(120.9123, 30.8377), 4326))"
        )
    )
    z = CLUSTER_MAX_ZOOM
    x, y = tile_of(120.9123, 30.8377, z)
    clustered = decode(render_tile(connection, TileRequest("incidents", z, x, y)))["incidents"]
    exact = connection.execute(
        sa.text(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_AsMVTGeom(ST_Transform(geom, 3857), "
            "ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS g FROM incidents) t"
        ),
        {"z": z, "x": x, "y": y},
    ).one()
    (cx, cy) = clustered[0]["geometry"]["coordinates"]
    # mapbox_vector_tile flips y to point up; PostGIS's tile space points down.
    assert (cx // CLUSTER_CELL, (EXTENT - cy) // CLUSTER_CELL) == (exact[0] // CLUSTER_CELL, exact[1] // CLUSTER_CELL)
    assert clustered[0]["properties"] == {"count": 1, "point_id": clustered[0]["properties"]["point_id"]}


def test_high_zoom_points_have_attributes_but_no_personal_data(
    client: TestClient, connection: Connection, mini_county: Any, make_key: Any
) -> None:
    add_incidents(connection, 5, 2024)
    x, y = tile_of(120.901, 30.831, 16)
    features = decode(client.get(f"/tiles/incidents/16/{x}/{y}.mvt", headers=make_key("viewer")).content)["incidents"]
    assert features, "the first incident lies in this tile"
    props = features[0]["properties"]
    assert props["category"] == "垃圾堆放" and props["grid_code"] == "330421001001001"
    assert not {"reporter_name", "reporter_phone"} & set(props)


def test_auth_and_bad_requests(client: TestClient, mini_county: Any, make_key: Any) -> None:
    assert client.get("/tiles/grids/10/856/418.mvt").status_code == 401
    key = make_key("viewer")["X-API-Key"]
    assert client.get(f"/tiles/grids/10/856/418.mvt?key={key}").status_code == 200
    assert client.get(f"/tiles/grids/10/856/418.mvt?key={key}x").status_code == 401
    headers = {"X-API-Key": key}
    unknown = client.get("/tiles/roads/10/856/418.mvt", headers=headers)
    assert unknown.status_code == 404 and "unknown layer 'roads'" in unknown.json()["detail"]
    assert client.get("/tiles/grids/3/8/1.mvt", headers=headers).status_code == 404
    window = client.get("/tiles/grids/10/856/418.mvt", params={"start": "2024-01-01T00:00:00Z"}, headers=headers)
    assert window.status_code == 422 and "boundary layer" in window.json()["detail"]
    empty = client.get("/tiles/incidents/10/0/0.mvt", headers=headers)
    assert empty.status_code == 200 and empty.content == b""


@pytest.mark.parametrize("layer", ["buildings", "addresses", "hazards"])
def test_every_point_layer_renders(connection: Connection, mini_county: Any, layer: str) -> None:
    inserts = {
        "buildings": "INSERT INTO buildings (code, geom) VALUES "
        "('B1', ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326))",
        "addresses": "INSERT INTO addresses (full_text, normalized, precision, geom) VALUES "
        "('幸福路1号', '幸福路1号', 'house', ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326))",
        "hazards": "INSERT INTO hazards (category, severity, status, found_at, geom) VALUES "
        "('fire', 'high', 'open', now(), ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326))",
    }
    connection.execute(sa.text(inserts[layer]))
    for z in (10, 17):
        x, y = tile_of(120.905, 30.835, z)
        assert len(decode(render_tile(connection, TileRequest(layer, z, x, y)))[layer]) == 1


# --- clustered tiles against an independent reference (issue 9: stored Web Mercator position) ---

WINDOW = (dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 9, 1, tzinfo=UTC))


def add_scattered_points(conn: Connection, table: str, count: int) -> None:
    """``count`` pseudo-random points around the mini county, over 2023-2025, plus two exactly at
    the window's edges (the start counts, the end does not)."""
    conn.execute(sa.text("SELECT setseed(0.42)"))
    conn.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))  # the assignment trigger is not under test
    if table == "incidents":
        insert = "INSERT INTO incidents (category, source, reported_at, geom) SELECT 'x', 'app', t, g FROM pts"
    else:
        insert = (
            "INSERT INTO hazards (category, severity, status, found_at, geom) "
            "SELECT 'fire', 'high', 'open', t, g FROM pts"
        )
    conn.execute(
        sa.text(
            "WITH pts AS ("
            " SELECT make_timestamptz(2023, 1, 1, 0, 0, 0, 'UTC') + random() * interval '900 days' AS t,"
            "        ST_SetSRID(ST_MakePoint(120.86 + random() * 0.12, 30.80 + random() * 0.08), 4326) AS g"
            " FROM generate_series(1, :n)"
            " UNION ALL SELECT :a, ST_SetSRID(ST_MakePoint(120.91, 30.835), 4326)"
            " UNION ALL SELECT :b, ST_SetSRID(ST_MakePoint(120.91, 30.835), 4326)) " + insert
        ),
        {"n": count, "a": WINDOW[0], "b": WINDOW[1]},
    )


def reference_cells(conn: Connection, table: str, z: int, x: int, y: int) -> dict[tuple[int, int], list[int]]:
    """Ids per cluster cell, from PostGIS's own projection and float arithmetic in Python."""
    column = "reported_at" if table == "incidents" else "found_at"
    rows = conn.execute(
        sa.text(
            f"SELECT id, ST_X(g), ST_Y(g) FROM (SELECT id, ST_Transform(geom, 3857) AS g FROM {table} "
            f"WHERE {column} >= :a AND {column} < :b) t"
        ),
        {"a": WINDOW[0], "b": WINDOW[1]},
    ).all()
    xmin, _, xmax, ymax = tile_bounds(z, x, y)
    unit = (xmax - xmin) / EXTENT * CLUSTER_CELL
    cells: dict[tuple[int, int], list[int]] = {}
    for point_id, px, py in rows:
        cell = (math.floor((px - xmin) / unit), math.floor((ymax - py) / unit))
        if all(-PAD <= c < CELLS + PAD for c in cell):
            cells.setdefault(cell, []).append(point_id)
    return cells


PAD = BUFFER // CLUSTER_CELL
CELLS = EXTENT // CLUSTER_CELL


def tile_cells(data: bytes, layer: str) -> dict[tuple[int, int], dict[str, Any]]:
    cells = {}
    for feature in decode(data).get(layer, []):
        gx, gy = feature["geometry"]["coordinates"]
        cell = (gx // CLUSTER_CELL, (EXTENT - gy) // CLUSTER_CELL)  # the decoder flips y to point up
        # The geometry test of the GiST path lets through points a metre past the buffer (PostGIS
        # compares float4 boxes); they are outside what any client draws, so they are not compared.
        if all(-PAD <= c < CELLS + PAD for c in cell):
            cells[cell] = feature["properties"]
    return cells


TILE_CASES = [(z, dx) for z in (8, 10, 11, SPATIAL_INDEX_MIN_ZOOM, 13, CLUSTER_MAX_ZOOM) for dx in (0, 1)]


@pytest.mark.parametrize("table", ["incidents", "hazards"])
def test_clustered_tile_matches_reference(connection: Connection, mini_county: Any, table: str) -> None:
    # incidents read their stored position, hazards compute it per row: both must give the counts
    # per pixel that PostGIS's projection gives, in the tile and its buffer (dx=1: the tile east).
    add_scattered_points(connection, table, 3000)
    connection.execute(sa.text(f"ANALYZE {table}"))
    for z, dx in TILE_CASES:
        x, y = tile_of(120.92, 30.84, z)
        x += dx
        expected = reference_cells(connection, table, z, x, y)
        got = tile_cells(render_tile(connection, TileRequest(table, z, x, y, *WINDOW)), table)
        assert {c: p["count"] for c, p in got.items()} == {c: len(ids) for c, ids in expected.items()}, (z, dx)
        for cell, props in got.items():
            ids = expected[cell]
            assert props.get("point_id") == (ids[0] if len(ids) == 1 else None), (z, dx, cell)
        if dx == 0:
            total = sum(p["count"] for p in got.values())
            assert total == sum(len(ids) for ids in expected.values()) > 0


def test_stored_position_follows_updates_and_deletes(connection: Connection, mini_county: Any) -> None:
    ids = (
        connection.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, geom) VALUES "
                "('x', 'app', :t, ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326)), "
                "('x', 'app', :t, ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326)) RETURNING id"
            ),
            {"t": dt.datetime(2024, 5, 1, tzinfo=UTC)},
        )
        .scalars()
        .all()
    )
    z = 10
    x, y = tile_of(120.905, 30.835, z)

    def counts() -> dict[tuple[int, int], int]:
        return {
            c: p["count"]
            for c, p in tile_cells(render_tile(connection, TileRequest("incidents", z, x, y)), "incidents").items()
        }

    (only,) = counts().items()
    assert only[1] == 2
    # The tile to the west holds no incident: answered by the GiST probe, without a tile query.
    assert render_tile(connection, TileRequest("incidents", z, x - 1, y)) == b""
    # Moving one incident 2 km east moves it to another pixel (no trigger: the column is generated).
    connection.execute(
        sa.text("UPDATE incidents SET geom = ST_SetSRID(ST_MakePoint(120.925, 30.835), 4326) WHERE id = :i"),
        {"i": ids[0]},
    )
    after_move = counts()
    assert sorted(after_move.values()) == [1, 1] and only[0] in after_move
    connection.execute(sa.text("DELETE FROM incidents WHERE id = :i"), {"i": ids[1]})
    assert list(counts().values()) == [1] and only[0] not in counts()


def test_points_outside_web_mercator_insert_and_stay_out_of_tiles(connection: Connection, mini_county: Any) -> None:
    # ln(tan(...)) has no value at the poles: the stored position is NULL there instead of an error.
    rows = connection.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, geom) SELECT 'x', 'app', now(), "
            "ST_SetSRID(ST_MakePoint(lon, lat), 4326) "
            "FROM (VALUES (120.0, 89.9), (0.0, -90.0), (180.0, 90.0)) v(lon, lat) "
            "RETURNING merc_x, merc_y"
        )
    ).all()
    assert rows == [(None, None)] * 3
    assert render_tile(connection, TileRequest("incidents", 0, 0, 0)) == b""
