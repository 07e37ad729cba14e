"""County scopes (issue #20): a county's key sees its county and answers 404 for another county's
records, as for any record outside its scope; a key of the whole deployment (the province) sees
both; a county that is not configured is refused naming it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.people.keys import ApiKeyError, create_key
from gis.people.scope import Scope
from tests.gis.test_counties import DX, A, B, two_counties  # noqa: F401 - the fixture

BODY = {"category": "dispute", "source": "grid_patrol"}


def test_county_keys_see_their_county_and_the_province_key_both(
    client: TestClient,
    make_key: Any,
    two_counties: int,  # noqa: F811 - the fixture
) -> None:
    province = make_key("admin", "province-centre")
    ids = {}
    for county, lon in ((A, 120.905), (B, 120.905 + DX)):
        r = client.post("/incidents", json={**BODY, "lon": lon, "lat": 30.832}, headers=province)
        assert r.status_code == 201, r.text
        assert r.json()["grid_code"] == f"{county}001001001"
        ids[county] = r.json()["id"]
    keys = {county: make_key("admin", f"{county}-centre", county) for county in (A, B)}
    for county, other in ((A, B), (B, A)):
        assert client.get(f"/incidents/{ids[county]}", headers=keys[county]).status_code == 200
        hidden = client.get(f"/incidents/{ids[other]}", headers=keys[county])
        assert hidden.status_code == 404, hidden.text
        listed = client.get("/incidents", headers=keys[county])
        assert listed.status_code == 200 and {i["id"] for i in listed.json()["items"]} == {ids[county]}
        # A transition of the other county's incident is not found either.
        moved = client.post(f"/incidents/{ids[other]}/transitions", json={"action": "accept"}, headers=keys[county])
        assert moved.status_code == 404, moved.text
    both = client.get("/incidents", headers=province)
    assert {i["id"] for i in both.json()["items"]} == set(ids.values())
    assert client.get(f"/incidents/{ids[B]}", headers=province).status_code == 200


def test_county_scope_where_and_unconfigured_county(connection: Connection, two_counties: int) -> None:  # noqa: F811
    scope = Scope.parse(f"{A}")
    assert scope.where("i") == ("i.county_code = :scope_county", {"scope_county": A})
    assert scope.contains(f"{A}001001") and not scope.contains(f"{B}001001") and scope.contains(f"{A}P01")
    with pytest.raises(ApiKeyError, match="'330481' is not in a county of this deployment"):
        create_key(connection, "viewer", "nowhere", "330481")
    with pytest.raises(ApiKeyError, match="'330481001' is not in a county"):
        create_key(connection, "viewer", "nowhere", "330481001")
    assert create_key(connection, "viewer", "county B", B).startswith("gm_")


def test_county_filter_and_an_unconfigured_county_is_a_422_naming_it(
    client: TestClient,
    make_key: Any,
    two_counties: int,  # noqa: F811 - the fixture
) -> None:
    province = make_key("admin", "province-centre")
    for lon in (120.905, 120.905 + DX, 120.915 + DX):
        assert client.post("/incidents", json={**BODY, "lon": lon, "lat": 30.832}, headers=province).status_code == 201
    only_b = client.get("/incidents", params={"county": B}, headers=province)
    assert only_b.status_code == 200 and {i["grid_code"][:6] for i in only_b.json()["items"]} == {B}
    assert len(only_b.json()["items"]) == 2
    bad = client.get("/incidents", params={"county": "330481"}, headers=province)
    assert bad.status_code == 422
    detail = bad.json()["detail"][0]
    assert (
        "county" in detail["loc"] and "330481" in detail["msg"] and "not a county of this deployment" in detail["msg"]
    )
    # A county key asking for the other county through the filter sees nothing of it.
    county_a = make_key("viewer", "a-viewer", A)
    assert client.get("/incidents", params={"county": B}, headers=county_a).json()["items"] == []
    kpis_b = client.get("/kpis", params={"county": B, "period": "year"}, headers=province)
    assert kpis_b.status_code == 200, kpis_b.text


def test_a_county_key_restores_only_its_own_county(
    client: TestClient,
    make_key: Any,
    two_counties: int,  # noqa: F811 - the fixture
) -> None:
    planner_b = make_key("admin", "b-planner", B)
    other = client.post(f"/boundaries/generations/{two_counties}/restore", json={"county": A}, headers=planner_b)
    assert other.status_code == 403, other.text
    province = make_key("admin", "province-planner")
    unknown = client.post(
        f"/boundaries/generations/{two_counties}/restore", json={"county": "330481"}, headers=province
    )
    assert unknown.status_code == 422 and "330481" in unknown.text
