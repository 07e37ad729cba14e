"""Hostile and broken input through the API: stored and searched as text, or refused with a clear
4xx naming the problem, and nothing stored.

SQL-looking text, LIKE wildcards, backslashes and NUL characters go into every text field of the
write endpoints and every text query parameter; huge and infinite coordinates, oversized bodies,
malformed GeoJSON, zip bombs and path traversal go into intake, lookups and boundary uploads; GBK
text comes in CSV and Shapefile uploads.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy.engine import Connection

HOSTILE = [
    "'; DROP TABLE incidents; --",
    "Robert'); DELETE FROM audit_log; --",
    "%",
    "_",
    "100%_off\\%",
    "back\\slash\\\\ and \\' quote",
    '" OR "1"="1',
    "$1 :name %(x)s {0} \\x00",
]
POINT = {"lon": 120.905, "lat": 30.835}  # inside grid 330421001001001 of the mini county
G1 = "330421001001001"


@pytest.fixture
def keys(make_key: Any, mini_county: Any) -> dict[str, dict[str, str]]:
    return {role: make_key(role) for role in ("viewer", "reporter", "dispatcher", "planner", "admin")}


def _count(connection: Connection, table: str) -> int:
    return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _incident(client: TestClient, headers: dict[str, str], **fields: Any) -> Any:
    body = {**POINT, "category": "dispute", "source": "grid_patrol", **fields}
    return client.post("/incidents", json=body, headers=headers)


# --- SQL-looking text is text --------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_sql_looking_text_in_intake_and_workflow_is_stored_verbatim(
    client: TestClient, keys: dict[str, dict[str, str]], connection: Connection, text: str
) -> None:
    created = _incident(
        client, keys["reporter"], description=text, reporter_name=text[:100], address=text, external_id=None
    )
    assert created.status_code == 201, created.text
    incident_id = created.json()["id"]
    note = f"note {text}"
    moved = client.post(
        f"/incidents/{incident_id}/transitions", json={"action": "accept", "note": note}, headers=keys["dispatcher"]
    )
    assert moved.status_code == 200, moved.text
    escalated = client.post(f"/incidents/{incident_id}/escalate", json={"note": note}, headers=keys["dispatcher"])
    assert escalated.status_code == 200, escalated.text

    got = client.get(f"/incidents/{incident_id}", headers=keys["dispatcher"]).json()
    assert got["description"] == text.strip()
    assert got["reporter_name"] == text[:100].strip()
    assert got["address_text"] == text.strip()
    notes = [e["note"] or "" for e in got["history"]]
    assert sum(n == note or n.endswith(f": {note}") for n in notes) == 2, notes
    # The tables the strings name are untouched, and the row is there once.
    assert connection.execute(sa.text("SELECT count(*) FROM incidents WHERE id = :i"), {"i": incident_id}).scalar() == 1
    assert _count(connection, "audit_log") > 0


@pytest.mark.parametrize("text", HOSTILE)
def test_sql_looking_filters_match_as_text_not_as_patterns(
    client: TestClient, keys: dict[str, dict[str, str]], text: str
) -> None:
    assert _incident(client, keys["reporter"], description="a plain report").status_code == 201
    viewer = keys["viewer"]
    # Area codes, categories, sources and statuses are checked (422 naming the parameter) or
    # compared as exact text (no match); never matched as a pattern.
    for param in ("town", "village", "grid", "micro_grid", "station", "beat", "category", "source", "status"):
        listed = client.get("/incidents", params={param: text}, headers=viewer)
        assert listed.status_code in (200, 422), listed.text
        if listed.status_code == 422:
            assert listed.json()["detail"][0]["loc"] == ["query", param]
        else:
            assert listed.json()["total"] == 0, f"{param}={text!r} matched incidents"
    for param in ("actor", "action", "target"):
        audited = client.get("/audit", params={param: text}, headers=keys["admin"])
        assert audited.status_code == 200, audited.text
        assert audited.json()["total"] == 0, f"audit {param}={text!r} matched entries"
    for path in (f"/grids/{text}", f"/beats/{text}", f"/maps/grids/{text}", f"/maps/beats/{text}"):
        assert client.get(path.replace("%", "%25"), headers=viewer).status_code == 404, path
    layer = client.get("/maps/data/layers/grid.geojson", params={"parent": text}, headers=viewer)
    assert layer.status_code == 200 and layer.json()["features"] == []
    for path in ("/maps/data/buildings.geojson", "/maps/data/hazards.geojson"):
        data = client.get(path, params={"grid": text}, headers=viewer)
        assert data.status_code == 200 and data.json()["features"] == [], path
    stats = client.get("/maps/data/grids/stats.json", params={"grid": text}, headers=viewer)
    assert stats.status_code in (200, 422)
    looked_up = client.get("/lookup", params={"address": text}, headers=viewer)
    assert looked_up.status_code in (404, 422), looked_up.text
    assert looked_up.json()["detail"]


@pytest.mark.parametrize("text", HOSTILE[:4])
def test_sql_looking_text_in_boundary_drafts_is_stored_verbatim(
    client: TestClient, keys: dict[str, dict[str, str]], text: str
) -> None:
    planner = keys["planner"]
    draft = client.post("/boundaries/drafts", json={"layer": "grid", "scope_code": "330421001", "note": text},
                        headers=planner)  # fmt: skip
    assert draft.status_code == 201, draft.text
    assert draft.json()["note"] == text
    d = draft.json()["id"]
    renamed = client.post(f"/boundaries/drafts/{d}/operations", json={"op": "rename", "code": G1, "name": text},
                          headers=planner)  # fmt: skip
    assert renamed.status_code == 200, renamed.text
    features = client.get(f"/boundaries/drafts/{d}/features", headers=planner).json()["features"]
    assert {f["properties"]["code"]: f["properties"]["name"] for f in features}[G1] == text
    listed = client.get("/boundaries/drafts", params={"status": text}, headers=planner)
    assert listed.status_code == 200 and listed.json() == []


# --- NUL characters: 422 naming the field, nothing stored ----------------------------------------


@pytest.mark.parametrize("field", ["description", "reporter_name", "reporter_phone", "external_id", "address"])
def test_nul_in_intake_is_a_422_naming_the_field(
    client: TestClient, keys: dict[str, dict[str, str]], connection: Connection, field: str
) -> None:
    before = _count(connection, "incidents")
    resp = _incident(client, keys["reporter"], **{field: "ab\x00cd"})
    assert resp.status_code == 422, resp.text
    assert field in json.dumps(resp.json()["detail"])
    assert _count(connection, "incidents") == before


def test_nul_in_other_writes_and_query_parameters_is_a_422(
    client: TestClient, keys: dict[str, dict[str, str]], connection: Connection
) -> None:
    incident_id = _incident(client, keys["reporter"]).json()["id"]
    dispatcher, planner = keys["dispatcher"], keys["planner"]
    events = _count(connection, "incident_events")
    cases: list[tuple[str, str, dict[str, str], Any, str]] = [
        ("POST", f"/incidents/{incident_id}/transitions", dispatcher, {"action": "accept", "note": "a\x00"}, "note"),
        ("POST", f"/incidents/{incident_id}/escalate", dispatcher, {"note": "a\x00"}, "note"),
        ("POST", "/boundaries/drafts", planner, {"layer": "grid", "scope_code": "330421001", "note": "x\x00"}, "note"),
        ("POST", "/lookup/batch", keys["viewer"], [{"address": "嘉善\x00"}], ""),
    ]
    for method, path, headers, body, field in cases:
        resp = client.request(method, path, json=body, headers=headers)
        if path == "/lookup/batch":  # per-item errors: the batch answers, the item fails
            assert resp.status_code == 200, resp.text
            assert resp.json()["results"][0]["ok"] is False
            continue
        assert resp.status_code == 422, (path, resp.text)
        assert field in json.dumps(resp.json()["detail"]), resp.text
    assert _count(connection, "incident_events") == events
    assert _count(connection, "drafts") == 0

    viewer = keys["viewer"]
    queries = [
        ("/incidents", {"grid": "a\x00"}),
        ("/audit", {"actor": "a\x00"}),
        ("/lookup", {"address": "嘉善\x00"}),
        ("/maps/data/layers/grid.geojson", {"parent": "a\x00"}),
        ("/maps/data/buildings.geojson", {"grid": "a\x00"}),
        ("/maps/data/hazards.geojson", {"grid": "a\x00"}),
        ("/grids/a%00", {}),
        ("/beats/a%00", {}),
    ]
    for path, params in queries:
        headers = keys["admin"] if path == "/audit" else viewer
        resp = client.get(path, params=params, headers=headers)
        assert resp.status_code in (200, 404, 422), (path, resp.status_code, resp.text)
        if resp.status_code == 200:  # filtered in memory: compared as text, nothing matches
            assert resp.json()["features"] == [], (path, resp.text)
        if resp.status_code == 422:
            named = [item["loc"][-1] for item in resp.json()["detail"]]
            assert set(named) & {*params, "code"}, (path, resp.text)


# --- huge and infinite coordinates ---------------------------------------------------------------

HUGE = ["1e308", "-1e308", "Infinity", "-Infinity", "NaN", "1e309"]


@pytest.mark.parametrize("value", HUGE)
def test_huge_coordinates_in_intake_are_refused(
    client: TestClient, keys: dict[str, dict[str, str]], connection: Connection, value: str
) -> None:
    before = _count(connection, "incidents")
    for field, other in (("lon", '"lat": 30.835'), ("lat", '"lon": 120.905')):
        raw = f'{{"{field}": {value}, {other}, "category": "dispute", "source": "grid_patrol"}}'
        resp = client.post("/incidents", content=raw, headers={**keys["reporter"], "Content-Type": "application/json"})
        assert resp.status_code == 422, resp.text
        assert field in json.dumps(resp.json()["detail"])
    assert _count(connection, "incidents") == before


@pytest.mark.parametrize("value", ["1e308", "-1e308", "inf", "-inf", "nan", "1e309"])
def test_huge_coordinates_in_lookups_and_filters_are_refused(
    client: TestClient, keys: dict[str, dict[str, str]], value: str
) -> None:
    viewer = keys["viewer"]
    resp = client.get("/lookup", params={"lon": value, "lat": "30.8"}, headers=viewer)
    assert resp.status_code == 422 and "lon" in json.dumps(resp.json()["detail"]), resp.text
    resp = client.get("/lookup", params={"lon": "120.9", "lat": value}, headers=viewer)
    assert resp.status_code == 422 and "lat" in json.dumps(resp.json()["detail"]), resp.text
    raw = f'[{{"lon": {value.replace("inf", "Infinity").replace("nan", "NaN")}, "lat": 30.8}}]'
    batch = client.post("/lookup/batch", content=raw, headers={**viewer, "Content-Type": "application/json"})
    assert batch.status_code in (200, 422), batch.text
    if batch.status_code == 200:
        item = batch.json()["results"][0]
        assert item["ok"] is False and item["error"]["field"] == "lon"
    bbox = f"{value},30.8,121,30.9"
    listed = client.get("/incidents", params={"bbox": bbox}, headers=viewer)
    assert listed.status_code == 422 and "bbox" in listed.text, listed.text
    ogc = client.get("/ogc/collections/ogc.grids/items", params={"bbox": bbox}, headers=viewer)
    assert ogc.status_code in (400, 422), ogc.text
    tile = client.get(f"/tiles/grids/{value}/0/0.mvt", headers=viewer)
    assert tile.status_code in (404, 422), tile.text


# --- bodies too large, malformed GeoJSON, zip bombs, path traversal --------------------------------


@pytest.fixture
def draft(client: TestClient, keys: dict[str, dict[str, str]]) -> int:
    resp = client.post("/boundaries/drafts", json={"layer": "grid", "scope_code": "330421001"}, headers=keys["planner"])
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _features(client: TestClient, keys: dict[str, dict[str, str]], draft: int) -> Any:
    return client.get(f"/boundaries/drafts/{draft}/features", headers=keys["planner"]).json()


def _upload(client: TestClient, keys: dict[str, dict[str, str]], draft: int, name: str, data: bytes) -> Any:
    return client.post(f"/boundaries/drafts/{draft}/upload", params={"filename": name}, content=data,
                       headers={**keys["planner"], "Content-Type": "application/octet-stream"})  # fmt: skip


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _polygon_fc(coords: list[list[float]], code: str = G1) -> bytes:
    feature = {"type": "Feature", "properties": {"code": code, "name": "x"},
               "geometry": {"type": "Polygon", "coordinates": [coords]}}  # fmt: skip
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


MALFORMED = {
    "truncated": b'{"type": "FeatureCollection", "features": [',
    "not json": b"\x89PNG\r\n\x1a\n not geojson at all",
    "no geometry": b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"1"},'
    b'"geometry":null}]}',
    "point": b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"1"},'
    b'"geometry":{"type":"Point","coordinates":[120.9,30.8]}}]}',
    "no code": _polygon_fc([[120.9, 30.83], [120.91, 30.83], [120.91, 30.84], [120.9, 30.83]], code=""),
    "huge coordinates": _polygon_fc([[1e308, 30.83], [-1e308, 30.83], [120.91, 1e308], [1e308, 30.83]]),
    "out of range": _polygon_fc([[200.0, 30.83], [201.0, 30.83], [201.0, 95.0], [200.0, 30.83]]),
    "empty": b"",
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_geojson_uploads_are_refused_and_nothing_is_stored(
    client: TestClient, keys: dict[str, dict[str, str]], draft: int, case: str
) -> None:
    before = _features(client, keys, draft)
    resp = _upload(client, keys, draft, "grids.geojson", MALFORMED[case])
    assert 400 <= resp.status_code < 500 and resp.status_code != 404, (case, resp.status_code, resp.text)
    assert resp.json()["detail"], resp.text
    assert _features(client, keys, draft) == before


@pytest.mark.parametrize("case", ["huge coordinates", "out of range"])
def test_huge_coordinates_saved_from_the_editor_are_refused(
    client: TestClient, keys: dict[str, dict[str, str]], draft: int, case: str
) -> None:
    before = _features(client, keys, draft)
    body = json.loads(MALFORMED[case])
    resp = client.put(f"/boundaries/drafts/{draft}/features", json=body, headers=keys["planner"])
    assert resp.status_code == 422, resp.text
    assert "coordinate" in resp.text or "range" in resp.text, resp.text
    assert _features(client, keys, draft) == before


def test_zip_bomb_path_traversal_and_size_limit(
    app: FastAPI, client: TestClient, keys: dict[str, dict[str, str]], draft: int
) -> None:
    before = _features(client, keys, draft)
    app.state.settings = app.state.settings.model_copy(update={"boundary_upload_max_mb": 1.0})
    bomb = _zip({"grids.geojson": b" " * (20 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024  # small on the wire, 20 MB unpacked
    resp = _upload(client, keys, draft, "grids.zip", bomb)
    assert resp.status_code == 422 and "zip bomb" in resp.json()["detail"], resp.text

    traversal = _zip({"../../../tmp/evil.geojson": MALFORMED["point"], "grids.geojson": MALFORMED["point"]})
    resp = _upload(client, keys, draft, "grids.zip", traversal)
    assert resp.status_code == 422 and "path traversal" in resp.json()["detail"], resp.text
    absolute = _zip({"/etc/evil.geojson": MALFORMED["point"]})
    resp = _upload(client, keys, draft, "grids.zip", absolute)
    assert resp.status_code == 422 and "outside the archive" in resp.json()["detail"], resp.text

    big = _upload(client, keys, draft, "grids.geojson", b" " * (2 * 1024 * 1024))
    assert big.status_code == 413 and "limit" in big.json()["detail"], big.text

    def chunks() -> Any:
        for _ in range(40):
            yield b" " * 65536

    streamed = client.post(f"/boundaries/drafts/{draft}/upload", params={"filename": "grids.geojson"},
                           content=chunks(), headers=keys["planner"])  # fmt: skip
    assert streamed.status_code == 413, streamed.text
    assert _features(client, keys, draft) == before


def test_oversized_json_bodies_are_refused(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    resp = _incident(client, keys["reporter"], description="长" * 1_000_000)
    assert resp.status_code == 422 and "description" in json.dumps(resp.json()["detail"])
    items = [{"lon": 120.905, "lat": 30.835}] * 10_001
    resp = client.post("/lookup/batch", json=items, headers=keys["viewer"])
    assert resp.status_code == 422 and "10,000" in resp.text


# --- GBK text --------------------------------------------------------------------------------------


def test_gbk_csv_in_lookup_batch_is_decoded(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    text = "lon,lat,address\n120.905,30.835,\n,,嘉善县魏塘街道中山路128号\n"
    resp = client.post("/lookup/batch", content=text.encode("gbk"),
                       headers={**keys["viewer"], "Content-Type": "text/csv"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    first, second = resp.json()["results"]
    assert first["ok"] and first["result"]["grid"]["code"] == G1
    assert "嘉善县魏塘街道中山路128号" in json.dumps(second, ensure_ascii=False)
    multipart = client.post("/lookup/batch", files={"file": ("points.csv", text.encode("gbk"), "text/csv")},
                            headers=keys["viewer"])  # fmt: skip
    assert multipart.status_code == 200 and multipart.json()["ok"] >= 1
    garbage = client.post("/lookup/batch", content=b"lon,lat\n\xff\xfe\xfa,1\n",
                          headers={**keys["viewer"], "Content-Type": "text/csv"})  # fmt: skip
    assert garbage.status_code in (200, 422), garbage.text


def test_gbk_shapefile_upload_keeps_its_chinese_names(
    client: TestClient, keys: dict[str, dict[str, str]], draft: int, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame(
        {"code": [G1], "name": ["魏塘街道第一网格"]}, geometry=[box(120.90, 30.83, 120.91, 30.84)], crs=4326
    )
    frame.to_file(tmp_path / "grids.shp", encoding="GBK")
    members = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix != ".cpg"}  # no .cpg: guessed
    resp = _upload(client, keys, draft, "grids.zip", _zip(members))
    assert resp.status_code == 200, resp.text
    names = {f["properties"]["code"]: f["properties"]["name"] for f in _features(client, keys, draft)["features"]}
    assert names[G1] == "魏塘街道第一网格"

    geojson_gbk = _polygon_fc([[120.9, 30.83], [120.91, 30.83], [120.91, 30.84], [120.9, 30.83]])
    geojson_gbk = geojson_gbk.replace(b'"name": "x"', '"name": "网格"'.encode("gbk"))
    resp = _upload(client, keys, draft, "grids.geojson", geojson_gbk)
    assert resp.status_code in (200, 422), resp.text
    if resp.status_code == 200:
        names = {f["properties"]["code"]: f["properties"]["name"] for f in _features(client, keys, draft)["features"]}
        assert names[G1] == "网格"
