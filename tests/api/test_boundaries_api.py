"""The boundary-planning API end to end on the mini county (inside the test transaction)."""

from __future__ import annotations

import json

import geopandas as gpd
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy.engine import Connection

G1, G2 = "330421001001001", "330421001001002"


def _draft(client: TestClient, headers: dict[str, str], scope: str = "330421001") -> int:
    r = client.post("/boundaries/drafts", json={"layer": "grid", "scope_code": scope, "note": "test"}, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_roles_and_draft_life_cycle(client: TestClient, make_key, mini_county, connection: Connection) -> None:
    planner, viewer = make_key("planner"), make_key("viewer")
    assert client.post("/boundaries/drafts", json={"layer": "grid"}, headers=viewer).status_code == 403
    assert client.get("/boundaries/generations").status_code == 401
    d = _draft(client, planner)
    info = client.get(f"/boundaries/drafts/{d}", headers=viewer).json()
    assert info["features"] == 4 and info["base_generation"] == mini_county.generation
    fc = client.get(f"/boundaries/drafts/{d}/features", headers=viewer).json()
    assert sorted(f["properties"]["code"] for f in fc["features"])[:2] == [G1, G2]

    r = client.post(
        f"/boundaries/drafts/{d}/operations",
        headers=planner,
        json={"op": "move_micro_grid", "micro_grid": "33042100100100102", "to_grid": G2},
    )
    assert r.status_code == 200, r.text
    bad = client.post(f"/boundaries/drafts/{d}/operations", headers=planner, json={"op": "merge", "codes": [G1]})
    assert bad.status_code == 422 and "at least two" in bad.json()["detail"]

    report = client.get(f"/boundaries/drafts/{d}/validate", headers=viewer).json()
    assert report["ok"] and report["errors"] == 0
    connection.execute(
        sa.text("INSERT INTO buildings (code, households, geom) VALUES ('b', 60, ST_Point(120.905, 30.837, 4326))")
    )
    impact = client.get(f"/boundaries/drafts/{d}/impact", headers=viewer).json()
    assert impact["totals"]["buildings"] == 1 and impact["moves"][0]["households"] == 60

    published = client.post(f"/boundaries/drafts/{d}/publish", json={"note": "why"}, headers=planner)
    assert published.status_code == 200, published.text
    gen = published.json()["generation"]
    assert published.json()["reassigned"]["buildings"]["changed"] == 1
    gens = client.get("/boundaries/generations", headers=viewer).json()
    assert gens[-1]["id"] == gen and gens[-1]["in_force"] and gens[-1]["note"] == "why"
    diff = client.get(f"/boundaries/generations/{mini_county.generation}/diff/{gen}", headers=viewer).json()
    assert diff["totals"]["grid"]["changed"] == 2
    assert client.get(f"/boundaries/generations/{mini_county.generation}/diff/999", headers=viewer).status_code == 404
    restored = client.post(
        f"/boundaries/generations/{mini_county.generation}/restore", json={"note": "undo"}, headers=planner
    )
    assert restored.status_code == 200 and restored.json()["generation"] > gen


def test_stale_draft_gets_409_naming_the_superseding_generation(client: TestClient, make_key, mini_county) -> None:
    planner = make_key("planner")
    first, second = _draft(client, planner), _draft(client, planner, "330421002")
    client.post(
        f"/boundaries/drafts/{first}/operations", headers=planner, json={"op": "rename", "code": G1, "name": "新名"}
    )
    client.post(
        f"/boundaries/drafts/{second}/operations",
        headers=planner,
        json={"op": "rename", "code": "330421002001001", "name": "另名"},
    )
    gen = client.post(f"/boundaries/drafts/{first}/publish", json={}, headers=planner).json()["generation"]
    stale = client.post(f"/boundaries/drafts/{second}/publish", json={}, headers=planner)
    assert stale.status_code == 409
    body = stale.json()
    assert body["superseded_by"] == gen and f"generation {gen}" in body["detail"] and "rebase" in body["detail"]
    assert client.post(f"/boundaries/drafts/{second}/rebase", headers=planner).status_code == 200
    assert client.post(f"/boundaries/drafts/{second}/publish", json={}, headers=planner).status_code == 200


def test_validation_errors_block_publish_with_the_report(client: TestClient, make_key, mini_county) -> None:
    planner = make_key("planner")
    d = _draft(client, planner)
    fc = client.get(f"/boundaries/drafts/{d}/features", headers=planner).json()
    for f in fc["features"]:
        if f["properties"]["code"] == G1:
            f["geometry"] = json.loads(gpd.GeoSeries([box(120.90, 30.83, 120.905, 30.84)]).to_json())["features"][0][
                "geometry"
            ]
    saved = client.put(f"/boundaries/drafts/{d}/features", json=fc, headers=planner)
    assert saved.status_code == 200 and saved.json()["written"] == 4
    r = client.post(f"/boundaries/drafts/{d}/publish", json={}, headers=planner)
    assert r.status_code == 422
    assert "gap" in {f["kind"] for f in r.json()["report"]["findings"]}


def test_uploads_exports_and_limits(client: TestClient, make_key, mini_county) -> None:
    planner = make_key("planner")
    d = _draft(client, planner)
    gpkg = client.get(f"/boundaries/drafts/{d}/export?format=gpkg", headers=planner)
    assert gpkg.status_code == 200 and gpkg.content[:16] == b"SQLite format 3\x00"
    geojson = client.get(f"/boundaries/drafts/{d}/export?format=geojson", headers=planner)
    assert len(geojson.json()["features"]) == 4
    up = client.post(
        f"/boundaries/drafts/{d}/upload?filename=back.gpkg",
        content=gpkg.content,
        headers={**planner, "Content-Type": "application/octet-stream"},
    )
    assert up.status_code == 200, up.text
    assert up.json()["written"] == 4 and up.json()["deleted"] == 0
    lines = (
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"1"},'
        b'"geometry":{"type":"Point","coordinates":[120.9,30.8]}}]}'
    )
    bad = client.post(f"/boundaries/drafts/{d}/upload?filename=pts.geojson", content=lines, headers=planner)
    assert bad.status_code == 422 and "Point" in bad.json()["detail"]
    client.app.state.settings = client.app.state.settings.model_copy(update={"boundary_upload_max_mb": 0.001})
    big = client.post(f"/boundaries/drafts/{d}/upload?filename=big.geojson", content=b" " * 5000, headers=planner)
    assert big.status_code == 413


def test_editor_page_takes_the_key_from_the_url(client: TestClient, make_key, mini_county) -> None:
    planner = make_key("planner")
    d = _draft(client, planner)
    key = planner["X-API-Key"]
    assert client.get(f"/maps/boundaries/drafts/{d}").status_code == 401
    page = client.get(f"/maps/boundaries/drafts/{d}?key={key}")
    assert page.status_code == 200
    html = page.text
    assert "leaflet-geoman" in html and "/static/vendor/npm/@geoman-io/leaflet-geoman-free@" in html
    assert "unpkg.com" not in html and key in html
    asset = client.get("/static/vendor/npm/@geoman-io/leaflet-geoman-free@2.20.2/dist/leaflet-geoman.js")
    assert asset.status_code == 200


def test_impact_preview_as_a_before_after_map(
    client: TestClient, make_key, mini_county, connection: Connection
) -> None:
    import re

    planner, viewer = make_key("planner"), make_key("viewer")
    d = _draft(client, planner)
    moved = client.post(
        f"/boundaries/drafts/{d}/operations",
        headers=planner,
        json={"op": "move_micro_grid", "micro_grid": "33042100100100102", "to_grid": G2},
    )
    assert moved.status_code == 200, moved.text
    connection.execute(
        sa.text("INSERT INTO buildings (code, households, geom) VALUES ('b', 60, ST_Point(120.905, 30.837, 4326))")
    )
    assert client.get(f"/maps/boundaries/drafts/{d}/impact").status_code == 401
    page = client.get(f"/maps/boundaries/drafts/{d}/impact", params={"key": viewer["X-API-Key"]})
    assert page.status_code == 200
    body = page.text
    # both states of each changed grid are drawn, with what moves in and out
    assert "影响预览 impact" in body  # the legend
    assert "before (generation" in body and "after (draft)" in body  # the two layers (names JSON-escaped)
    assert body.count(G1) >= 2 and body.count(G2) >= 2
    assert "户数 60" in body
    # served offline: no script or stylesheet from outside the server
    assert not re.findall(r"""(?:src|href)=["']https?://""", body)
    assert client.get("/maps/boundaries/drafts/9999/impact", params={"key": viewer["X-API-Key"]}).status_code == 404
