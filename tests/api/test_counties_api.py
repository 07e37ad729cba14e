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
