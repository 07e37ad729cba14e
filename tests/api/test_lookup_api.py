"""GET /lookup by coordinate and by address, POST /lookup/batch, bad input, roles, open lookups."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from boundaries.sample import X0, XM
from gis.spatial.crs import from_wgs84

GX = (X0 + XM) / 2
GRID_W = "330421001001001"
PREFIX = "浙江省嘉兴市嘉善县"


def _add_address(conn: Connection, full_text: str, lon: float, lat: float) -> int:
    from gis.spatial.address_text import parse_address

    p = parse_address(full_text)
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO addresses (full_text, normalized, house_no, building_no, precision, geom) "
                "VALUES (:t, :n, :h, :b, :p, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
            ),
            {
                "t": full_text,
                "n": p.normalized,
                "h": p.house_no,
                "b": p.building_no,
                "p": p.precision,
                "x": lon,
                "y": lat,
            },
        ).scalar_one()
    )


@pytest.fixture
def county(connection: Connection, mini_county) -> dict[str, int]:  # type: ignore[no-untyped-def]
    connection.execute(
        sa.text(
            "INSERT INTO staff (grid_code, role, name, phone) VALUES "
            "(:g, 'grid_leader', '王五', '13900000001'), (:g, 'grid_worker', '李四', '13900000002'), "
            "(:g, 'aux_police', '赵六', '13900000003')"
        ),
        {"g": GRID_W},
    )
    return {
        "building": _add_address(connection, f"{PREFIX}魏塘街道中山路128号3幢", 120.905, 30.834),
        "house": _add_address(connection, f"{PREFIX}魏塘街道解放东路12号", 120.925, 30.845),
    }


def test_coordinate_lookup_answers_everything(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/lookup", params={"lon": GX, "lat": 30.834}, headers=make_key("viewer"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "inside" and body["snap_distance_m"] is None
    assert body["grid"]["code"] == GRID_W  # on the shared edge: the smaller code, once
    assert body["micro_grid"]["code"] == GRID_W + "01"
    assert body["town"]["code"] == "330421001" and body["village"]["code"] == "330421001001"
    assert body["county"]["code"] == "330421"
    assert body["beat"]["code"] == "330421P0101" and body["station"]["code"] == "330421P01"
    assert body["input"] == {"lon": GX, "lat": 30.834, "crs": "wgs84"}
    assert [s["role"] for s in body["staff"]] == ["grid_leader", "grid_worker", "aux_police"]
    assert isinstance(body["generation"], int)


@pytest.mark.parametrize(("role", "masked"), [("viewer", True), ("reporter", True), ("dispatcher", False)])
def test_staff_contacts_are_masked_below_dispatcher(
    client: TestClient, make_key, county, role: str, masked: bool
) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/lookup", params={"lon": 120.905, "lat": 30.834}, headers=make_key(role)).json()
    leader = body["staff"][0]
    assert (leader.pop("layer"), leader.pop("area_code")) == ("grid", "330421001001001")  # where posted
    if masked:
        assert leader == {"role": "grid_leader", "name": "王*", "phone": "139****0001"}
    else:
        assert leader == {"role": "grid_leader", "name": "王五", "phone": "13900000001"}


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_converted_input_near_an_edge(client: TestClient, make_key, county, crs: str) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("viewer")
    lon, lat = GX - 30 / 95_500, 30.834
    clon, clat = from_wgs84(lon, lat, crs)
    got = client.get("/lookup", params={"lon": clon, "lat": clat, "crs": crs}, headers=headers).json()
    want = client.get("/lookup", params={"lon": lon, "lat": lat}, headers=headers).json()
    assert got["grid"] == want["grid"] == {"code": GRID_W, "name": f"{GRID_W[:-3]}第1网格"}
    assert got["lon"] == pytest.approx(lon, abs=1e-6)
    raw = client.get("/lookup", params={"lon": clon, "lat": clat}, headers=headers).json()
    assert raw["grid"]["code"] != GRID_W


def test_address_lookup_returns_match_and_assignment(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/lookup", params={"address": "嘉善县魏塘街道中山路一百二十八号3栋"}, headers=make_key("viewer"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["address"]["method"] == "exact"
    assert body["address"]["match"]["address_id"] == county["building"]
    assert body["address"]["match"]["precision"] == "building"
    assert body["grid"]["code"] == GRID_W and body["status"] == "inside"
    assert body["lon"] == pytest.approx(120.905)


def test_address_below_threshold_is_404_with_candidates(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/lookup", params={"address": "魏塘街道人民路128号3幢"}, headers=make_key("viewer"))
    assert resp.status_code == 404
    body = resp.json()
    assert body["error"] == "address_not_found"
    assert "threshold" in body["detail"]
    assert body["address"]["match"] is None
    assert county["building"] in [c["address_id"] for c in body["address"]["candidates"]]


@pytest.mark.parametrize(
    ("params", "param", "reason"),
    [
        ({}, "lon", "required"),
        ({"lat": 30.8}, "lon", "required"),
        ({"lon": 120.9}, "lat", "required"),
        ({"lon": "abc", "lat": 30.8}, "lon", "number"),
        ({"lon": "nan", "lat": 30.8}, "lon", "finite"),
        ({"lon": 120.9, "lat": 95}, "lat", "out of range"),
        ({"lon": 30.834, "lat": 120.905}, "lat", "look swapped"),
        ({"lon": 120.9, "lat": 30.8, "crs": "utm"}, "crs", "unknown coordinate system"),
        ({"lon": 120.9, "lat": 30.8, "as_of": "someday"}, "as_of", "not a date"),
        ({"address": ""}, "address", "empty"),
        ({"address": "  "}, "address", "empty"),
        ({"address": "路" * 2001}, "address", "at most 2,000"),
        ({"address": "路" * 1999}, "address", "too long"),
        ({"address": "中山路" + "1" * 300 + "号"}, "address", "after normalising"),
        ({"address": "中山路1号", "lon": 120.9, "lat": 30.8}, "address", "not both"),
    ],
)
def test_bad_input_is_422_naming_the_parameter(client: TestClient, make_key, county, params, param, reason) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/lookup", params=params, headers=make_key("viewer"))
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert detail[0]["loc"][-1] == param
    assert reason in detail[0]["msg"]


def test_a_key_is_needed_unless_coordinate_lookups_are_open(app: FastAPI, client: TestClient, county) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/lookup", params={"lon": 120.905, "lat": 30.834}).status_code == 401
    app.state.settings = app.state.settings.model_copy(update={"open_coordinate_lookups": True})
    resp = client.get("/lookup", params={"lon": 120.905, "lat": 30.834})
    assert resp.status_code == 200
    assert resp.json()["staff"][0]["phone"] == "139****0001"  # anonymous callers see masked contacts
    # Address lookups stay behind a key.
    assert client.get("/lookup", params={"address": "魏塘街道解放东路12号"}).status_code == 401


def test_batch_json_keeps_order_and_reports_bad_items_in_place(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    clon, clat = from_wgs84(GX - 30 / 95_500, 30.834, "gcj02")
    items = [
        {"lon": 120.905, "lat": 30.834},
        {"lon": "x", "lat": 30.8},
        {"address": "魏塘街道解放东路十二号"},
        {"lon": clon, "lat": clat, "crs": "gcj02"},
        {"lon": 120.9, "lat": 30.8, "crs": "mars"},
        {"address": "魏塘街道人民路128号3幢"},
        "not an object",
        {"lon": 30.834, "lat": 120.905},
        {"address": ""},
    ]
    resp = client.post("/lookup/batch", json=items, headers=make_key("viewer"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["count"] == len(items) and body["ok"] == 3 and body["failed"] == 6
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["ok"] for r in results] == [True, False, True, True, False, False, False, False, False]
    assert results[0]["result"]["grid"]["code"] == GRID_W
    assert results[1]["error"]["field"] == "lon"
    assert results[2]["result"]["address"]["match"]["address_id"] == county["house"]
    assert results[3]["result"]["grid"]["code"] == GRID_W
    assert results[4]["error"]["field"] == "crs"
    assert results[5]["error"]["field"] == "address" and results[5]["candidates"]
    assert results[6]["error"]["field"] == "item"
    assert results[7]["error"]["field"] == "lat" and "swapped" in results[7]["error"]["message"]
    assert results[8]["error"]["field"] == "address"


def test_batch_csv_body_and_upload(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("viewer")
    text = "lon,lat,crs,address\n120.905,30.834,wgs84,\n,,,魏塘街道中山路128号3幢\n120.9,,wgs84,\n"
    resp = client.post("/lookup/batch", content=text.encode(), headers={**headers, "Content-Type": "text/csv"})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["ok"] for r in results] == [True, True, False]
    assert results[1]["result"]["address"]["match"]["address_id"] == county["building"]
    assert results[2]["error"]["field"] == "lat"
    upload = client.post(
        "/lookup/batch", files={"file": ("points.csv", text.encode("gb18030"), "text/csv")}, headers=headers
    )
    assert upload.status_code == 200
    assert [r["ok"] for r in upload.json()["results"]] == [True, True, False]
    bad = client.post("/lookup/batch", content=b"x,y\n1,2\n", headers={**headers, "Content-Type": "text/csv"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "file"


def test_batch_limits(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("viewer")
    over = client.post("/lookup/batch", json=[{"lon": 120.9, "lat": 30.84}] * 10_001, headers=headers)
    assert over.status_code == 422
    assert over.json()["detail"][0]["loc"][-1] == "items" and "10,000" in over.json()["detail"][0]["msg"]
    full = client.post("/lookup/batch", json=[{"lon": 120.905, "lat": 30.834}] * 10_000, headers=headers)
    assert full.status_code == 200 and full.json()["ok"] == 10_000
    assert client.post("/lookup/batch", json={"lon": 1}, headers=headers).status_code == 422
    assert client.post("/lookup/batch", json=[]).status_code == 401


def test_openapi_documents_the_lookups(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    get = spec["paths"]["/lookup"]["get"]
    assert "micro-grid" in get["summary"] and "404" in get["responses"]
    params = {p["name"]: p for p in get["parameters"]}
    assert {"lon", "lat", "crs", "address", "as_of"} <= set(params)
    assert params["address"]["examples"]
    batch = spec["paths"]["/lookup/batch"]["post"]
    assert {"application/json", "text/csv", "multipart/form-data"} <= set(batch["requestBody"]["content"])
