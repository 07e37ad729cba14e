"""Scoped keys (issue 15): a town-scoped key sees all of its town and nothing of the other town, in
every endpoint family; a grid-scoped reporter files and moves nothing elsewhere; coordinate
lookups answer for any key. The mini county's towns: 330421001 (west), 330421002 (east)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from api.fastpath import IntakeFastPath
from gis.people.keys import ApiKeyError, create_key
from gis.people.scope import Scope, ScopeError
from tests.api.test_fastpath import _fastpath
from tests.api.test_tiles import decode, tile_of

TOWN_A, TOWN_B = "330421001", "330421002"
GRID_A = "330421001001001"  # the west town's south-west grid
POINT_A = {"lon": 120.905, "lat": 30.832}  # in GRID_A
POINT_A2 = {"lon": 120.915, "lat": 30.845}  # town A, another grid
POINT_B = {"lon": 120.935, "lat": 30.845}  # town B
BODY = {"category": "dispute", "source": "grid_patrol"}


@pytest.fixture
def world(client: TestClient, connection: Connection, mini_county: Any, make_key: Any) -> dict[str, Any]:
    admin = make_key("admin", "county-admin")
    ids = {}
    for name, point in (("a", POINT_A), ("a2", POINT_A2), ("b", POINT_B)):
        r = client.post("/incidents", json={**BODY, **point}, headers=admin)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    connection.execute(
        sa.text(
            "INSERT INTO buildings (code, name, is_rental, risk_level, geom) VALUES "
            "('BA', 'rental A', true, 'high', ST_SetSRID(ST_MakePoint(:ax, :ay), 4326)), "
            "('BB', 'rental B', true, 'high', ST_SetSRID(ST_MakePoint(:bx, :by), 4326))"
        ),
        {"ax": POINT_A["lon"], "ay": POINT_A["lat"], "bx": POINT_B["lon"], "by": POINT_B["lat"]},
    )
    return {
        "ids": ids,
        "all": admin,
        "a": make_key("admin", "town-a-admin", TOWN_A),
        "a_dispatcher": make_key("dispatcher", "town-a-dispatcher", TOWN_A),
        "grid_reporter": make_key("reporter", "grid-reporter", GRID_A),
        "grid_dispatcher": make_key("dispatcher", "grid-dispatcher", GRID_A),
    }


def _ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.text
    return {i["id"] for i in response.json()["items"]}


def test_scope_parse_contains_and_where() -> None:
    town = Scope.parse(f"{TOWN_A},{GRID_A}")
    assert town.codes == (TOWN_A,)  # the grid is inside the town
    assert town.contains(GRID_A) and not town.contains("330421002001001") and not town.contains(None)
    assert Scope().contains(None) and Scope().where() == ("TRUE", {})
    assert Scope.parse("lookup").where() == ("FALSE", {})
    sql, params = Scope.parse(f"{TOWN_A},330421P01").where("i")
    assert sql == "(i.town_code = :scope_town OR i.station_code = :scope_station)"
    assert params == {"scope_town": TOWN_A, "scope_station": "330421P01"}
    sql, params = Scope.parse(f"{TOWN_A},{TOWN_B}").where()
    assert (sql, params) == ("town_code = ANY(:scope_town)", {"scope_town": [TOWN_A, TOWN_B]})
    with pytest.raises(ScopeError, match="'12x'"):
        Scope.parse("12x")


def test_key_scope_codes_are_checked(connection: Connection, mini_county: Any) -> None:
    with pytest.raises(ApiKeyError, match="'330421009'"):
        create_key(connection, "viewer", "nowhere", "330421009")
    assert create_key(connection, "viewer", "west", TOWN_A).startswith("gm_")


def test_incident_listing_details_and_stats(client: TestClient, world: dict[str, Any]) -> None:
    ids = world["ids"]
    assert _ids(client.get("/incidents", headers=world["a"])) == {ids["a"], ids["a2"]}
    assert _ids(client.get("/incidents", params={"town": TOWN_B}, headers=world["a"])) == set()
    assert _ids(client.get("/incidents", headers=world["all"])) == set(ids.values())
    assert client.get(f"/incidents/{ids['a']}", headers=world["a"]).status_code == 200
    hidden = client.get(f"/incidents/{ids['b']}", headers=world["a"])
    missing = client.get("/incidents/999999999", headers=world["a"])
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(str(ids["b"]), "N") == missing.json()["detail"].replace("999999999", "N")
    stats = client.get("/stats", params={"by": "town"}, headers=world["a"])
    assert stats.status_code == 200, stats.text
    assert stats.json()["totals"]["total"] == 2
    assert TOWN_B not in json.dumps(stats.json())


def test_transitions_and_escalation_outside_scope_are_not_found(
    client: TestClient, connection: Connection, world: dict[str, Any]
) -> None:
    ids = world["ids"]
    accept = {"action": "accept"}
    assert (
        client.post(f"/incidents/{ids['b']}/transitions", json=accept, headers=world["a_dispatcher"]).status_code == 404
    )
    assert client.post(f"/incidents/{ids['b']}/escalate", headers=world["a_dispatcher"]).status_code == 404
    assert (
        client.post(f"/incidents/{ids['a2']}/transitions", json=accept, headers=world["grid_dispatcher"]).status_code
        == 404
    )
    status = connection.execute(sa.text("SELECT status FROM incidents WHERE id = :id"), {"id": ids["b"]}).scalar()
    assert status == "reported"
    done = client.post(f"/incidents/{ids['a']}/transitions", json=accept, headers=world["grid_dispatcher"])
    assert done.status_code == 200 and done.json()["status"] == "accepted"


def test_grid_reporter_files_only_inside_its_grid(
    app: FastAPI, client: TestClient, connection: Connection, world: dict[str, Any]
) -> None:
    def count() -> int:
        return int(connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one())

    fast = _fastpath(app, IntakeFastPath)
    before, served = count(), fast.answered
    # The first request verifies the key (the route); the later ones come through the fast path.
    for point in (POINT_B, POINT_A2, POINT_B):
        refused = client.post("/incidents", json={**BODY, **point}, headers=world["grid_reporter"])
        assert refused.status_code == 403
        assert "33042100" in refused.json()["detail"] and GRID_A in refused.json()["detail"]
    assert count() == before
    audited = connection.execute(sa.text("SELECT count(*) FROM audit_log WHERE actor = 'grid-reporter'")).scalar()
    assert audited == 0
    for _ in range(2):
        filed = client.post("/incidents", json={**BODY, **POINT_A}, headers=world["grid_reporter"])
        assert filed.status_code == 201 and filed.json()["grid_code"] == GRID_A
    assert count() == before + 2
    assert fast.answered == served + 2  # a scoped key's reports inside its scope take the fast path


def test_grid_and_beat_details(client: TestClient, world: dict[str, Any]) -> None:
    assert client.get(f"/grids/{GRID_A}", headers=world["a"]).status_code == 200
    assert client.get("/grids/330421002001001", headers=world["a"]).status_code == 404
    assert client.get("/grids/330421002001001", headers=world["all"]).status_code == 200
    assert client.get("/beats/330421P0101", headers=world["a"]).status_code == 404
    assert client.get("/beats/330421P0101", headers=world["all"]).status_code == 200


def test_map_pages_and_data(client: TestClient, world: dict[str, Any]) -> None:
    a = world["a"]
    assert client.get("/maps/grids/330421002001001", headers=a).status_code == 404
    page = client.get("/maps/command-center", params={"window": "7d"}, headers=a)
    assert page.status_code == 200
    assert "330421002001" not in page.text and "rental B" not in page.text
    for path in ("/maps/data/layers/grid.geojson", "/maps/data/buildings.geojson"):
        data = client.get(path, headers=a).json()
        codes = {f["properties"].get("code") or f["properties"].get("grid_code") for f in data["features"]}
        assert codes and not any(str(c).startswith(TOWN_B) for c in codes), path
    town_layer = client.get("/maps/data/layers/town.geojson", headers=a).json()
    assert [f["properties"]["code"] for f in town_layer["features"]] == [TOWN_A]
    heat = client.get("/maps/data/heat.json", params={"window": "7d"}, headers=a).json()
    assert heat["total"] == 2
    stats = client.get("/maps/data/grids/stats.json", params={"window": "7d"}, headers=a).json()
    assert stats and all(code.startswith(TOWN_A) for code in stats)


def test_tiles(client: TestClient, world: dict[str, Any]) -> None:
    x, y = tile_of(120.92, 30.84, 12)
    # Incidents at zoom 12 are clustered per pixel (a count, no codes): 2 of town A, 3 in all.
    for layer, expected in (("incidents", {"a": 2, "all": 3}), ("buildings", {"a": 1, "all": 2})):
        counts = {}
        for who in ("a", "all"):
            tile = decode(client.get(f"/tiles/{layer}/12/{x}/{y}.mvt", headers=world[who]).content)
            counts[who] = sum(f["properties"]["count"] for f in tile[layer])
        assert counts == expected, layer
    for layer, field in (("grids", "code"), ("towns", "code")):
        scoped = decode(client.get(f"/tiles/{layer}/12/{x}/{y}.mvt", headers=world["a"]).content)
        whole = decode(client.get(f"/tiles/{layer}/12/{x}/{y}.mvt", headers=world["all"]).content)
        assert scoped[layer], layer
        assert all(str(f["properties"].get(field, "")).startswith(TOWN_A) for f in scoped[layer]), layer
        assert sum(f["properties"].get("count", 1) for f in whole[layer]) > sum(
            f["properties"].get("count", 1) for f in scoped[layer]
        ), layer


def test_exports(client: TestClient, world: dict[str, Any]) -> None:
    geo = client.get("/export/incidents", params={"format": "geojson"}, headers=world["a"])
    assert geo.status_code == 200
    assert {f["properties"]["id"] for f in geo.json()["features"]} == {world["ids"]["a"], world["ids"]["a2"]}
    rows = list(
        csv.DictReader(io.StringIO(client.get("/export/buildings", params={"format": "csv"}, headers=world["a"]).text))
    )
    assert [r["code"] for r in rows] == ["BA"]
    towns = client.get("/export/towns", params={"format": "geojson"}, headers=world["a"]).json()
    assert [f["properties"]["code"] for f in towns["features"]] == [TOWN_A]


def test_audit(client: TestClient, world: dict[str, Any]) -> None:
    client.post(f"/incidents/{world['ids']['a']}/transitions", json={"action": "accept"}, headers=world["a_dispatcher"])
    client.post(f"/incidents/{world['ids']['b']}/transitions", json={"action": "accept"}, headers=world["all"])
    scoped = client.get("/audit", headers=world["a"]).json()
    assert {e["actor"] for e in scoped["items"]} == {"town-a-dispatcher"}
    whole = client.get("/audit", headers=world["all"]).json()
    assert {"town-a-dispatcher", "county-admin"} <= {e["actor"] for e in whole["items"]}


def test_lookup_by_coordinate_answers_any_key(client: TestClient, world: dict[str, Any], make_key: Any) -> None:
    lookup_key = make_key("viewer", "integration", "lookup")
    for headers in (world["a"], lookup_key):
        r = client.get("/lookup", params=POINT_B, headers=headers)
        assert r.status_code == 200 and r.json()["grid"]["code"].startswith(TOWN_B)
    assert _ids(client.get("/incidents", headers=lookup_key)) == set()


def test_accounts_of_people_and_units(connection: Connection, mini_county: Any) -> None:
    from gis.people.keys import verify_key

    unit = connection.execute(
        sa.text(
            "INSERT INTO org_units (code, name, kind, layer, area_code) "
            "VALUES ('TC1', '镇指挥室', 'town_centre', 'town', :t) RETURNING id"
        ),
        {"t": TOWN_A},
    ).scalar_one()
    person = connection.execute(sa.text("INSERT INTO people (name) VALUES ('张三') RETURNING id")).scalar_one()
    by_unit = verify_key(connection, create_key(connection, "dispatcher", "centre", org_unit_id=unit))
    assert by_unit is not None and by_unit.scope == Scope((TOWN_A,)) and by_unit.org_unit_id == unit
    first = verify_key(connection, create_key(connection, "reporter", "phone", GRID_A, person_id=person))
    second = verify_key(connection, create_key(connection, "reporter", "tablet", GRID_A, person_id=person))
    assert first is not None and second is not None
    assert first.account_id == second.account_id and first.person_id == person  # one account, two keys
    with pytest.raises(ApiKeyError, match="no person"):
        create_key(connection, "reporter", "ghost", person_id=10**9)
