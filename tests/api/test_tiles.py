from __future__ import annotations

import datetime as dt
import math
from typing import Any

import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.tiles import CLUSTER_CELL, CLUSTER_MAX_ZOOM, EXTENT, TileRequest, render_tile

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
