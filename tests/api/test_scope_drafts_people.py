"""Scoped accounts (issue 15) on boundary drafts and the people endpoints: a key of town A sees and
changes A only; B's drafts, people, postings and units are "not found" (404), never forbidden."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy.engine import Connection

TOWN_A, TOWN_B = "330421001", "330421002"
VILLAGE_A, VILLAGE_B = TOWN_A + "001", TOWN_B + "001"
GRID_A, GRID_A2, GRID_B = VILLAGE_A + "001", VILLAGE_A + "002", VILLAGE_B + "001"


def _draft(client: TestClient, headers: dict[str, str], scope: str | None) -> Any:
    body: dict[str, Any] = {"layer": "grid", "note": "scope test"}
    if scope is not None:
        body["scope_code"] = scope
    return client.post("/boundaries/drafts", json=body, headers=headers)


def test_a_town_planner_drafts_inside_the_town_only(client: TestClient, make_key, mini_county) -> None:  # type: ignore[no-untyped-def]
    county = make_key("planner")
    planner_a, viewer_a = make_key("planner", "a-planner", TOWN_A), make_key("viewer", "a-viewer", TOWN_A)

    # No scope_code: the draft takes the key's one area; B is refused naming the code.
    own = _draft(client, planner_a, None)
    assert own.status_code == 201, own.text
    assert own.json()["scope_code"] == TOWN_A and own.json()["features"] == 4
    refused = _draft(client, planner_a, TOWN_B)
    assert refused.status_code == 403 and TOWN_B in refused.json()["detail"]
    assert _draft(client, planner_a, VILLAGE_A).status_code == 201
    beats = client.post("/boundaries/drafts", json={"layer": "beat"}, headers=planner_a)
    assert beats.status_code == 403 and "beat code '330421P0" in beats.json()["detail"]

    draft_a = own.json()["id"]
    draft_b = _draft(client, county, TOWN_B).json()["id"]
    draft_county = _draft(client, county, None).json()["id"]

    listed = {d["id"] for d in client.get("/boundaries/drafts", headers=viewer_a).json()}
    assert draft_a in listed and draft_b not in listed and draft_county not in listed
    assert {draft_a, draft_b, draft_county} <= {
        d["id"] for d in client.get("/boundaries/drafts", headers=county).json()
    }

    for hidden in (draft_b, draft_county):
        for path in ("", "/features", "/validate", "/impact", "/export"):
            r = client.get(f"/boundaries/drafts/{hidden}{path}", headers=viewer_a)
            assert r.status_code == 404, (hidden, path, r.status_code)
            assert r.json()["detail"] == f"no draft with id {hidden}"
        page = client.get(f"/maps/boundaries/drafts/{hidden}", headers=viewer_a)
        assert page.status_code == 404
        op = {"op": "rename", "code": GRID_B, "name": "x"}
        assert client.post(f"/boundaries/drafts/{hidden}/operations", json=op, headers=planner_a).status_code == 404
        assert client.post(f"/boundaries/drafts/{hidden}/publish", json={}, headers=planner_a).status_code == 404
        assert client.post(f"/boundaries/drafts/{hidden}/discard", headers=planner_a).status_code == 404
    assert client.get(f"/maps/boundaries/drafts/{draft_a}", headers=viewer_a).status_code == 200

    # Edits naming a unit of B are refused with the code; edits inside A go through.
    for op in (
        {"op": "rename", "code": GRID_A, "new_code": TOWN_B + "001009"},
        {"op": "rename", "code": GRID_A, "parent_code": VILLAGE_B},
        {"op": "merge", "codes": [GRID_A, GRID_B]},
    ):
        r = client.post(f"/boundaries/drafts/{draft_a}/operations", json=op, headers=planner_a)
        assert r.status_code == 403, (op, r.text)
        assert TOWN_B in r.json()["detail"] and "outside your scope" in r.json()["detail"]
    intruder = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": GRID_B}, "geometry": mapping(box(120.93, 30.83, 120.94, 30.84))}
        ],
    }
    put = client.put(f"/boundaries/drafts/{draft_a}/features?mode=upsert", json=intruder, headers=planner_a)
    assert put.status_code == 403 and GRID_B in put.json()["detail"]
    ok = client.post(
        f"/boundaries/drafts/{draft_a}/operations",
        json={"op": "rename", "code": GRID_A, "name": "新名"},
        headers=planner_a,
    )
    assert ok.status_code == 200, ok.text

    published = client.post(f"/boundaries/drafts/{draft_a}/publish", json={"note": "A"}, headers=planner_a)
    assert published.status_code == 200, published.text
    changed = [c for layer in published.json()["layers"].values() for codes in layer.values() for c in codes]
    assert changed == [GRID_A]
    restore = client.post(f"/boundaries/generations/{mini_county.generation}/restore", json={}, headers=planner_a)
    assert restore.status_code == 403
    # Boundary history stays county-wide (the published record).
    assert client.get("/boundaries/generations", headers=viewer_a).status_code == 200


def test_a_draft_copied_with_a_unit_of_another_town_is_not_published(
    client: TestClient, make_key, mini_county, connection: Connection
) -> None:  # type: ignore[no-untyped-def]
    planner_a = make_key("planner", "a-planner", TOWN_A)
    draft = _draft(client, planner_a, None).json()["id"]
    # A polygon of B that (by a bad earlier copy) sits in A's draft: publishing would change B.
    connection.execute(
        sa.text("UPDATE draft_features SET code = :b WHERE draft_id = :d AND code = :a"),
        {"b": GRID_B + "9", "d": draft, "a": GRID_A2},
    )
    r = client.post(f"/boundaries/drafts/{draft}/publish", json={}, headers=planner_a)
    assert r.status_code == 403 and GRID_B + "9" in r.json()["detail"]


def _person(client: TestClient, headers: dict[str, str], name: str, area: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "postings": [{"role": "grid_worker", "area_code": area, **extra}]}
    r = client.post("/staff", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_people_of_another_town_are_not_found(client: TestClient, make_key, mini_county) -> None:  # type: ignore[no-untyped-def]
    county = make_key("planner")
    for code, area in (("UA", VILLAGE_A), ("UB", VILLAGE_B)):
        unit = {"code": code, "name": code, "kind": "village_station", "area_code": area}
        assert client.post("/org-units", json=unit, headers=county).status_code == 201
    person_a = _person(client, county, "甲", GRID_A, org_unit="UA", ends_on="2099-01-10")
    person_b = _person(client, county, "乙", GRID_B, org_unit="UB", ends_on="2099-01-10")
    planner_a, viewer_a = make_key("planner", "a-planner", TOWN_A), make_key("viewer", "a-viewer", TOWN_A)

    staff = client.get("/staff", headers=viewer_a).json()
    assert staff["total"] == 1 and [p["area_code"] for p in staff["items"]] == [GRID_A]
    assert client.get("/staff", headers=county).json()["total"] == 2
    assert client.get("/staff", params={"area_code": GRID_B}, headers=viewer_a).json()["total"] == 0
    assert client.get(f"/staff/people/{person_a['id']}", headers=viewer_a).status_code == 200
    hidden = client.get(f"/staff/people/{person_b['id']}", headers=viewer_a)
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"no person with id {person_b['id']}"

    posting_b = person_b["postings"][0]["id"]
    assert client.post(f"/staff/postings/{posting_b}/end", headers=planner_a).status_code == 404
    assert client.patch(f"/staff/postings/{posting_b}", json={"note": "x"}, headers=planner_a).status_code == 404
    assert client.patch(f"/staff/people/{person_b['id']}", json={"name": "改"}, headers=planner_a).status_code == 404
    elsewhere = client.post(
        f"/staff/people/{person_a['id']}/postings", json={"role": "grid_leader", "area_code": GRID_B}, headers=planner_a
    )
    assert elsewhere.status_code == 404 and GRID_B in elsewhere.json()["detail"]
    assert client.post("/staff", json={"name": "丙", "postings": [{"role": "grid_worker", "area_code": GRID_B}]},
                       headers=planner_a).status_code == 404  # fmt: skip
    inside = client.post(
        f"/staff/people/{person_a['id']}/postings",
        json={"role": "grid_leader", "area_code": GRID_A2},
        headers=planner_a,
    )
    assert inside.status_code == 201, inside.text
    ended = client.post(f"/staff/postings/{person_a['postings'][0]['id']}/end", headers=planner_a)
    assert ended.status_code == 200
    # A person serving in A and B is changed only by a key whose scope holds both.
    both = _person(client, county, "丁", GRID_A)
    client.post(
        f"/staff/people/{both['id']}/postings", json={"role": "grid_leader", "area_code": GRID_B}, headers=county
    )
    shown = client.get(f"/staff/people/{both['id']}", headers=viewer_a).json()
    assert [p["area_code"] for p in shown["postings"]] == [GRID_A]
    leave = client.patch(f"/staff/people/{both['id']}", json={"status": "left"}, headers=planner_a)
    assert leave.status_code == 403 and "outside your scope" in leave.json()["detail"]
    assert (
        client.patch(f"/staff/people/{person_a['id']}", json={"phone": "13800000000"}, headers=planner_a).status_code
        == 200
    )
    # B's posting is untouched.
    assert (
        client.get(f"/staff/people/{person_b['id']}", headers=county).json()["postings"][0]["ends_on"] == "2099-01-10"
    )

    assert [u["code"] for u in client.get("/org-units", headers=viewer_a).json()] == ["UA"]
    assert {u["code"] for u in client.get("/org-units", headers=county).json()} == {"UA", "UB"}
    assert client.get("/org-units/UB/members", headers=viewer_a).status_code == 404
    assert client.get("/org-units/UA/members", headers=viewer_a).json()["total"] == 1
    unit_b = {"code": "UB2", "name": "UB2", "kind": "village_station", "area_code": VILLAGE_B}
    assert client.post("/org-units", json=unit_b, headers=planner_a).status_code == 404

    report = client.get("/staffing", params={"on": "2099-01-01"}, headers=viewer_a).json()
    assert report["summary"]["grids"] == 4 and all(g["code"].startswith(TOWN_A) for g in report["grids"])
    assert all(m["code"].startswith(TOWN_A) for m in report["micro_grids_without_leader"])
    assert [p["name"] for p in report["postings_ending_soon"]] == []  # A's posting was ended today
    county_report = client.get("/staffing", params={"on": "2099-01-01"}, headers=county).json()
    assert county_report["summary"]["grids"] == 8 and [p["name"] for p in county_report["postings_ending_soon"]] == [
        "乙"
    ]
    layer = client.get("/staffing/grids.geojson", headers=viewer_a).json()
    assert sorted(f["properties"]["code"] for f in layer["features"]) == sorted(
        c for c in mini_county.grids["code"] if c.startswith(TOWN_A)
    )
    page = client.get("/maps/staffing", headers=viewer_a)
    assert page.status_code == 200 and GRID_A in page.text and GRID_B not in page.text
