"""Field work over HTTP: inspections (201; 422 naming the item, the posting, the deadline; 404 for
a building unknown or outside the key's scope; nothing stored when refused), the building with its
history (landlord masked below dispatcher), hazards (report, transitions with 409, the filter,
raising an incident linked both ways) and campaign progress as JSON and XLSX."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from tests.gis.fieldwork_fixtures import GRID, TOWN, make_field


@pytest.fixture
def field(connection, mini_county):  # type: ignore[no-untyped-def]
    return make_field(connection)


@pytest.fixture
def reporter(make_key):  # type: ignore[no-untyped-def]
    return make_key("reporter")


def _count(connection, table: str) -> int:  # type: ignore[no-untyped-def]
    return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _body(field, **over):  # type: ignore[no-untyped-def]
    body = {
        "inspectors": [field.worker_posting, field.police_posting],
        "lon": 120.9051,
        "lat": 30.8351,
        "results": [
            {"code": "escape_window", "result": "fail", "note": "防盗窗焊死"},
            {"code": "gas", "result": "pass"},
        ],
    }
    return {**body, **over}


def test_an_inspection_opens_a_hazard_and_shows_in_the_building(client, field, reporter, make_key) -> None:  # type: ignore[no-untyped-def]
    r = client.post(f"/buildings/{field.building_id}/inspections", json=_body(field), headers=reporter)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["outcome"] == "fail" and out["risk_level"] == "high" and len(out["hazards_opened"]) == 1
    viewer = make_key("viewer")
    building = client.get(f"/buildings/{field.building_id}", headers=viewer).json()
    assert building["risk_level"] == "high" and building["next_inspection_on"] is not None
    assert building["landlord_phone"] != "13800001234"  # masked for a viewer
    assert building["inspections"][0]["inspectors"][0]["name"].endswith("*")
    assert building["hazards"][0]["id"] == out["hazards_opened"][0]
    hazards = client.get("/hazards", params={"grid": GRID, "status": "open"}, headers=viewer).json()
    assert [h["id"] for h in hazards["items"]] == out["hazards_opened"]
    assert client.get("/hazards", params={"town": "330421002"}, headers=viewer).json()["total"] == 0


@pytest.mark.parametrize(
    ("change", "loc", "named"),
    [
        ({"results": [{"code": "no_window", "result": "fail"}]}, ["body", "results[0].code"], "no_window"),
        ({"inspectors": [987654]}, ["body", "inspectors[0]"], "987654"),
        (
            {"at": "2026-05-04T10:00", "results": [{"code": "gas", "result": "fail", "deadline": "2026-05-02T09:00"}]},
            ["body", "results[0].deadline"],
            "2026-05-02T09:00",
        ),
        ({"checklist_kind": "bakery"}, ["body", "checklist_kind"], "bakery"),
    ],
)
def test_bad_inspections_answer_422_naming_the_field(client, connection, field, reporter, change, loc, named) -> None:  # type: ignore[no-untyped-def]
    before = _count(connection, "inspections")
    r = client.post(f"/buildings/{field.building_id}/inspections", json=_body(field, **change), headers=reporter)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == loc and named in detail["msg"]
    assert _count(connection, "inspections") == before and _count(connection, "hazards") == 0


def test_unknown_or_out_of_scope_buildings_answer_404(client, connection, field, make_key) -> None:  # type: ignore[no-untyped-def]
    other_town = make_key("reporter", name="town2", scope="330421002")
    r = client.post(f"/buildings/{field.building_id}/inspections", json=_body(field), headers=other_town)
    assert r.status_code == 404
    assert client.get(f"/buildings/{field.building_id}", headers=other_town).status_code == 404
    r = client.post("/buildings/999999999/inspections", json=_body(field), headers=make_key("reporter"))
    assert r.status_code == 404 and "999999999" in r.json()["detail"]
    assert _count(connection, "inspections") == 0


def test_hazard_transitions_and_incident_link(client, connection, field, reporter) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/hazards",
        json={"category": "ebike_fly_line", "severity": "high", "building_id": field.building_id,
              "responsible_party": "tenant"},
        headers=reporter,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    hazard = r.json()
    assert hazard["status"] == "open" and hazard["grid_code"] == GRID and hazard["rectify_by"] is not None
    hid = hazard["id"]
    r = client.post(f"/hazards/{hid}/transitions", json={"action": "submit"}, headers=reporter)
    assert r.json()["status"] == "submitted"
    r = client.post(f"/hazards/{hid}/transitions", json={"action": "notify"}, headers=reporter)
    assert r.status_code == 409 and "reinspect" in r.json()["allowed"]
    r = client.post(f"/hazards/{hid}/transitions", json={"action": "reinspect", "result": "soso"}, headers=reporter)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "result"]
    r = client.post(f"/hazards/{hid}/incident", headers=reporter)
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["category"] == "ebike_charging" and incident["grid_code"] == GRID
    assert client.post(f"/hazards/{hid}/incident", headers=reporter).json()["id"] == incident["id"]  # replay
    linked = client.get("/hazards", params={"incident_id": incident["id"]}, headers=reporter).json()
    assert [h["id"] for h in linked["items"]] == [hid]
    detail = client.get(f"/hazards/{hid}", headers=reporter).json()
    assert detail["incidents"][0]["incident_id"] == incident["id"] and detail["incidents"][0]["origin"] == "hazard"
    # The reverse: an incident reveals a hazard.
    r = client.post(
        "/hazards", json={"category": "gas", "lon": 120.906, "lat": 30.836, "incident_id": incident["id"]},
        headers=reporter,
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["incidents"][0]["origin"] == "incident"
    r = client.post(f"/hazards/{hid}/transitions", json={"action": "rectified"}, headers=reporter)
    assert r.json()["status"] == "rectified" and r.json()["rectified_at"] is not None


def test_hazard_filters_refuse_bad_values(client, reporter, field) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/hazards", json={"category": "飞线", "building_id": field.building_id}, headers=reporter)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "category"]
    r = client.get("/hazards", params={"status": "lost"}, headers=reporter)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "status"]
    r = client.get("/hazards", params={"start": "2026-05-05", "end": "2026-05-01"}, headers=reporter)
    assert r.status_code == 422


def test_campaign_progress_json_and_xlsx(client, field, reporter, make_key) -> None:  # type: ignore[no-untyped-def]
    dispatcher = make_key("dispatcher")
    r = client.post(
        "/campaigns",
        json={"name": "电动车充电专项整治", "area_code": TOWN, "starts_on": "2020-01-01", "ends_on": "2099-12-31"},
        headers=dispatcher,
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    client.post(f"/buildings/{field.building_id}/inspections", json=_body(field), headers=reporter)
    progress = client.get(f"/campaigns/{cid}/progress", headers=reporter).json()
    assert progress["total"]["inspected"] == 1 and progress["total"]["failed"] == 1
    assert progress["grids"][0]["grid_code"] == GRID and progress["grids"][0]["hazards"] == 1
    r = client.get(f"/campaigns/{cid}/progress", params={"format": "xlsx"}, headers=reporter)
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    sheet = book["网格"]
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert row["grid_code"] == GRID and row["failed"] == 1
    layer = client.get(f"/campaigns/{cid}/progress.geojson", headers=reporter).json()
    props = layer["features"][0]["properties"]
    assert layer["features"][0]["geometry"]["type"] == "Polygon"
    assert (props["grid_code"], props["inspected_share"], props["rectified_share"]) == (GRID, 1.0, 0.0)
    bad = client.post(
        "/campaigns", json={"name": "x", "area_code": "330421999", "starts_on": "2026-01-01", "ends_on": "2026-02-01"},
        headers=dispatcher,
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "area_code"]


def test_hazards_outside_the_keys_scope_are_not_found(client, field, reporter, make_key) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/hazards", json={"category": "gas", "building_id": field.building_id}, headers=reporter)
    hid = r.json()["id"]
    other_town = make_key("reporter", name="town2", scope="330421002")
    assert client.get(f"/hazards/{hid}", headers=other_town).status_code == 404
    r = client.post(f"/hazards/{hid}/transitions", json={"action": "notify"}, headers=other_town)
    assert r.status_code == 404
    assert client.post(f"/hazards/{hid}/incident", headers=other_town).status_code == 404
    assert client.get("/hazards", headers=other_town).json()["total"] == 0
    # Reporting at a position in the other town with a key of this grid: 403, nothing stored.
    own_grid = make_key("reporter", name="grid1", scope=GRID)
    r = client.post("/hazards", json={"category": "gas", "lon": 120.93, "lat": 30.845}, headers=own_grid)
    assert r.status_code == 403
    assert client.get("/hazards", headers=reporter).json()["total"] == 1


def test_a_resent_inspection_is_stored_once(client, connection, field, reporter) -> None:  # type: ignore[no-untyped-def]
    body = _body(field, client_id="phone-7:42")
    first = client.post(f"/buildings/{field.building_id}/inspections", json=body, headers=reporter)
    assert first.status_code == 201
    again = client.post(f"/buildings/{field.building_id}/inspections", json=body, headers=reporter)
    assert again.status_code == 200
    replayed = again.json()
    assert replayed["replayed"] is True and replayed["id"] == first.json()["id"]
    assert replayed["hazards_opened"] == first.json()["hazards_opened"]
    assert replayed["inspectors"] == sorted(body["inspectors"])
    assert _count(connection, "inspections") == 1 and _count(connection, "hazards") == 1
    other = make_field(connection, "B-OTHER")
    r = client.post(f"/buildings/{other.building_id}/inspections", json=body, headers=reporter)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "client_id"]
