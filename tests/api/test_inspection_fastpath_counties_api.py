"""The inspection fast path under the county scopes of migration 0032: a whole-deployment key
takes it, a key scoped to a county (which ``gridmap_record_inspection`` does not take) is left to
the route, and the stored rows are the route's either way."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.fieldwork import inspectfast
from gis.people.scope import WHOLE_COUNTY, Scope
from tests.api.test_fieldwork_fastpath import NEW_IDS, ROUTE, _fastpath, _inspection, _stored_inspections, _without
from tests.gis.fieldwork_fixtures import add_building, add_posting


def test_scope_arguments_take_every_layer_but_a_county() -> None:
    whole = inspectfast._scope_args(WHOLE_COUNTY)
    assert whole is not None and whole["whole"] is True
    assert whole["grids"] == [] and whole["beats"] == []
    village = inspectfast._scope_args(Scope(("330421001001",)))
    assert village is not None and village["whole"] is False and village["villages"] == ["330421001001"]
    # A county's rows are matched on county_code, which the function has no argument for.
    assert inspectfast._scope_args(Scope(("330421",))) is None
    assert inspectfast._scope_args(Scope(("330421001001", "330421"))) is None


def test_a_county_scoped_key_is_the_routes_and_stores_the_same(
    app: FastAPI, client: TestClient, connection: Connection, mini_county, make_key
) -> None:  # type: ignore[no-untyped-def]
    whole, county = make_key("reporter"), make_key("reporter", scope="330421")  # same name: same actor
    worker, police = add_posting(connection, "李网格", "grid_worker"), add_posting(connection, "王辅警", "aux_police")
    warm, one, two, three = (add_building(connection, f"B-CTY-{i}") for i in range(4))
    body = _inspection(worker, police)
    for headers in (whole, county):  # caches both keys
        assert client.post(f"/buildings/{warm}/inspections", json=body, headers=headers).status_code == 201
    fast = _fastpath(app)
    before = fast.answered
    by_whole = client.post(f"/buildings/{one}/inspections", json=body, headers=whole)
    assert fast.answered == before + 1  # the whole-deployment key takes the fast path
    by_county = client.post(f"/buildings/{two}/inspections", json=body, headers=county)
    assert fast.answered == before + 1  # the county key is the route's
    want = client.post(f"/buildings/{three}/inspections", params=ROUTE, json=body, headers=whole)
    assert by_whole.status_code == by_county.status_code == want.status_code == 201, by_county.text
    assert _without(by_whole.json(), *NEW_IDS) == _without(want.json(), *NEW_IDS)
    assert _without(by_county.json(), *NEW_IDS) == _without(want.json(), *NEW_IDS)
    stored = _stored_inspections(connection, three)
    assert _stored_inspections(connection, one) == stored == _stored_inspections(connection, two)
