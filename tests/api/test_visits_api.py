"""POST /visits (idempotent resend, batches all or nothing, GCJ-02/BD-09), POST /patrols and its
points (future points, speed flags), coverage and layers, and scope (404 outside)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.spatial.crs import metres_between, wgs84_to_bd09, wgs84_to_gcj02
from tests.fieldwork_data import G1, OTHER_TOWN_GRID, TOWN1, seed


@pytest.fixture
def field(connection: Connection, mini_county):  # type: ignore[no-untyped-def]
    return seed(connection)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _count(connection: Connection, table: str) -> int:
    return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_visit_resend_is_idempotent(client: TestClient, connection: Connection, field, make_key) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("reporter")
    visit = {
        "client_id": "phone-1:0001",
        "person_id": field.person_id,
        "building_id": field.buildings[3],
        "kind": "night",
        "knows": {"people": True, "family": True, "address": True, "situation": False},
    }
    first = client.post("/visits", json=visit, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True and first.json()["grid_code"] == G1
    again = client.post("/visits", json=visit, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    assert _count(connection, "visits") == 1

    batch = [visit, *({**visit, "client_id": f"phone-1:{i:04d}", "building_id": field.buildings[i]} for i in (4, 5))]
    out = client.post("/visits", json={"visits": batch}, headers=headers)
    assert out.status_code == 201
    assert (out.json()["created"], out.json()["replayed"]) == (2, 1)
    resent = client.post("/visits", json={"visits": batch}, headers=headers)
    assert resent.status_code == 200 and resent.json()["created"] == 0
    assert [v["id"] for v in resent.json()["visits"]] == [v["id"] for v in out.json()["visits"]]
    assert _count(connection, "visits") == 3


def test_bad_row_names_its_index_and_stores_nothing(
    client: TestClient, connection: Connection, field, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    rows = [{"client_id": f"c{i}", "person_id": field.person_id, "building_id": field.buildings[i]} for i in range(3)]
    rows[2]["kind"] = "picnic"
    r = client.post("/visits", json=rows, headers=admin_headers)
    assert r.status_code == 422
    item = r.json()["detail"][0]
    assert item["loc"] == ["body", "visits[2]", "kind"] and item["input"] == "picnic"
    assert "picnic" in item["msg"]

    future = (_now() + dt.timedelta(hours=2)).isoformat()
    rows[2] = {"client_id": "c2", "person_id": field.person_id, "building_id": field.buildings[2], "at": future}
    r = client.post("/visits", json={"visits": rows}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "visits[2]", "at"]
    assert "future" in r.json()["detail"][0]["msg"]

    rows[2] = {"client_id": "c2", "person_id": field.person_id, "building_id": 10**12}
    r = client.post("/visits", json={"visits": rows}, headers=admin_headers)
    assert r.status_code == 404 and "visits[2].building_id" in r.json()["detail"]
    assert _count(connection, "visits") == 0


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_visit_position_in_chinese_crs(
    client: TestClient, connection: Connection, field, admin_headers, crs: str
) -> None:  # type: ignore[no-untyped-def]
    lon, lat = field.positions[7]
    sent = wgs84_to_gcj02(lon, lat) if crs == "gcj02" else wgs84_to_bd09(lon, lat)
    body = {
        "client_id": f"pos-{crs}",
        "person_id": field.person_id,
        "address_id": field.address,
        "lon": sent[0],
        "lat": sent[1],
        "crs": crs,
    }
    r = client.post("/visits", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["building_id"] == field.buildings[0]  # the address's building
    x, y, stored_crs = connection.execute(
        sa.text("SELECT ST_X(geom), ST_Y(geom), received_crs FROM visits WHERE id = :id"), {"id": r.json()["id"]}
    ).one()
    assert metres_between(x, y, lon, lat) < 1.0
    assert stored_crs == crs


def test_scope_answers_404(client: TestClient, connection: Connection, field, make_key) -> None:  # type: ignore[no-untyped-def]
    scoped = make_key("reporter", scope=TOWN1)
    body = {"client_id": "x", "person_id": field.person_id, "building_id": field.other_building}
    r = client.post("/visits", json=body, headers=scoped)
    assert r.status_code == 404
    r = client.post("/visits", json={**body, "building_id": None, "address_id": field.other_address}, headers=scoped)
    assert r.status_code == 404
    r = client.post("/patrols", json={"person_id": field.person_id, "grid_code": OTHER_TOWN_GRID}, headers=scoped)
    assert r.status_code == 404
    admin = make_key("admin")
    other = client.post("/patrols", json={"person_id": field.person_id, "grid_code": OTHER_TOWN_GRID}, headers=admin)
    assert other.status_code == 201
    pid = other.json()["id"]
    assert client.get(f"/patrols/{pid}", headers=scoped).status_code == 404
    assert client.get(f"/patrols/{pid}/coverage", headers=scoped).status_code == 404
    point = {"points": [{"lon": 120.925, "lat": 30.835, "t": _now().isoformat()}]}
    assert client.post(f"/patrols/{pid}/points", json=point, headers=scoped).status_code == 404
    assert client.get(f"/grids/{OTHER_TOWN_GRID}/coverage", headers=scoped).status_code == 404
    assert (
        client.get(f"/visits/workers/{field.person_id}", headers=make_key("viewer", scope="330421002")).status_code
        == 404
    )
    assert client.get(f"/grids/{G1}/coverage", headers=scoped).status_code == 200
    assert _count(connection, "visits") == 0


def test_patrol_points_api(client: TestClient, connection: Connection, field, make_key) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("reporter")
    start = _now() - dt.timedelta(minutes=30)
    r = client.post(
        "/patrols",
        json={"person_id": field.person_id, "grid_code": G1, "started_at": start.isoformat()},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    wgs = [(120.9010 + i * 0.0003, 30.8310) for i in range(10)]
    points = []
    for i, (lon, lat) in enumerate(wgs):
        x, y = wgs84_to_gcj02(lon, lat)
        points.append({"lon": x, "lat": y, "t": (start + dt.timedelta(seconds=20 * (i + 1))).isoformat()})
    bad = [*points, {"lon": 120.902, "lat": 30.831, "t": (_now() + dt.timedelta(minutes=30)).isoformat()}]
    r = client.post(f"/patrols/{pid}/points", json={"crs": "gcj02", "points": bad}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "points[10]", "t"]
    assert _count(connection, "patrol_points") == 0
    r = client.post(
        f"/patrols/{pid}/points",
        json={"crs": "gcj02", "points": [{"lon": "x", "lat": 1, "t": "2020-01-01"}]},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "points[0]", "lon"]

    points[4] = {**points[4], "lat": points[4]["lat"] + 0.05}  # ~5.5 km off in 20 s
    r = client.post(f"/patrols/{pid}/points", json={"crs": "gcj02", "points": points}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["flagged"] == [4] and r.json()["stored"] == 10
    stored = connection.execute(
        sa.text("SELECT ST_X(geom), ST_Y(geom) FROM patrol_points WHERE patrol_id = :id AND NOT flagged ORDER BY t"),
        {"id": pid},
    ).all()
    kept = [p for i, p in enumerate(wgs) if i != 4]
    assert all(metres_between(x, y, lon, lat) < 1.0 for (x, y), (lon, lat) in zip(stored, kept, strict=True))

    cov = client.get(f"/patrols/{pid}/coverage", headers=headers).json()
    assert cov["buildings"] == 36 and cov["buildings_covered"] >= 1 and cov["flagged"] == 1
    day = start.astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    tracks = client.get("/patrols/tracks.geojson", params={"on": day}, headers=headers)
    assert tracks.status_code == 200 and tracks.headers["content-type"].startswith("application/geo+json")
    feature = next(f for f in tracks.json()["features"] if f["properties"]["id"] == pid)
    assert feature["geometry"]["type"] == "LineString"
    end = client.post(f"/patrols/{pid}/end", json={}, headers=headers)
    assert end.status_code == 200 and end.json()["ended_at"] is not None


def test_coverage_layers(client: TestClient, field, admin_headers) -> None:  # type: ignore[no-untyped-def]
    rows = [{"client_id": f"v{i}", "person_id": field.person_id, "building_id": field.buildings[i]} for i in range(5)]
    assert client.post("/visits", json=rows, headers=admin_headers).status_code == 201
    grid = client.get(f"/grids/{G1}/coverage", params={"days": 30}, headers=admin_headers).json()
    assert grid["visits"]["buildings_visited"] == 5 and grid["visits"]["buildings_not_visited"] == 31
    points = client.get("/visits/not-visited.geojson", params={"days": 30}, headers=admin_headers).json()
    ids = {f["properties"]["id"] for f in points["features"]}
    assert set(field.buildings[5:]) <= ids and not ids & set(field.buildings[:5])
    grids = client.get("/visits/not-visited.geojson", params={"by": "grid"}, headers=admin_headers).json()
    g1 = next(f for f in grids["features"] if f["properties"]["code"] == G1)
    assert g1["properties"]["not_visited"] == 31 and "fillColor" in g1["properties"]["style"]
    summary = client.get("/visits/not-visited", headers=admin_headers).json()
    assert summary["grids"][G1]["not_visited"] == 31
    today = client.get("/visits/day.geojson", headers=admin_headers).json()
    assert len(today["features"]) == 5
    quota = client.get("/visits/quota", headers=admin_headers).json()
    worker = next(w for w in quota["list"] if w["person_id"] == field.person_id)
    assert worker["visits"] == 5 and worker["short"] == 5 and quota["quota"] == 10
    mine = client.get(f"/visits/workers/{field.person_id}", params={"quota": 5}, headers=admin_headers).json()
    assert mine["met"] is True and mine["visits"] == 5
    assert client.get("/visits/not-visited", params={"days": 0}, headers=admin_headers).status_code == 422


def test_visit_links_incidents_and_hazards(client: TestClient, connection: Connection, field, make_key) -> None:  # type: ignore[no-untyped-def]
    def hazard(lon: float) -> int:
        return int(
            connection.execute(
                sa.text(
                    "INSERT INTO hazards (category, severity, status, found_at, geom) VALUES ('gas', 'high', 'open', "
                    "now(), ST_SetSRID(ST_MakePoint(:x, 30.835), 4326)) RETURNING id"
                ),
                {"x": lon},
            ).scalar_one()
        )

    inside, outside = hazard(120.905), hazard(120.925)
    scoped = make_key("reporter", scope=TOWN1)
    body = {
        "client_id": "link",
        "person_id": field.person_id,
        "building_id": field.buildings[0],
        "hazard_ids": [inside],
    }
    r = client.post("/visits", json=body, headers=scoped)
    assert r.status_code == 201, r.text
    stored = connection.execute(sa.text("SELECT hazard_ids FROM visits WHERE id = :id"), {"id": r.json()["id"]})
    assert stored.scalar_one() == [inside]
    r = client.post("/visits", json={**body, "client_id": "link2", "hazard_ids": [inside, outside]}, headers=scoped)
    assert r.status_code == 404 and "visit.hazard_ids[1]" in r.json()["detail"]
    r = client.post("/visits", json={**body, "client_id": "link3", "incident_ids": [10**12]}, headers=scoped)
    assert r.status_code == 404 and "visit.incident_ids[0]" in r.json()["detail"]
    r = client.post("/visits", json={**body, "client_id": "link4", "incident_ids": ["7"]}, headers=scoped)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "visit", "incident_ids[0]"]
