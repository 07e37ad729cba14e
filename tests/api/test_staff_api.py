"""/staff, /org-units and /staffing: create, change and end postings, 422s naming the field with
nothing written, masking, and the staffing report against a direct count of the same rows."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.people.rules import id_card_check_char

VILLAGE = "330421001001"
G1, G2 = "330421001001001", "330421001001002"
BEAT = "330421P0101"


def card(seq: int) -> str:
    body = f"33042119900101{seq:03d}"
    return body + id_card_check_char(body)


def _counts(conn: Connection) -> tuple[int, int]:
    return (
        int(conn.execute(sa.text("SELECT count(*) FROM people")).scalar_one()),
        int(conn.execute(sa.text("SELECT count(*) FROM postings")).scalar_one()),
    )


@pytest.fixture
def planner(make_key, mini_county):  # type: ignore[no-untyped-def]
    return make_key("planner")


def test_create_change_and_end_a_posting(client: TestClient, connection: Connection, planner, make_key) -> None:  # type: ignore[no-untyped-def]
    body = {
        "name": "王网格",
        "phone": "13900000001",
        "id_card": card(1),
        "postings": [{"role": "grid_leader", "area_code": G1, "starts_on": "2024-01-01"}],
    }
    resp = client.post("/staff", json=body, headers=planner)
    assert resp.status_code == 201, resp.text
    person = resp.json()
    posting = person["postings"][0]
    assert (posting["layer"], posting["area_code"], posting["ends_on"]) == ("grid", G1, None)

    # A second leader of the same grid in the same period: 422 naming the role, nothing written.
    before = _counts(connection)
    clash = {"name": "钱重复", "postings": [{"role": "grid_leader", "area_code": G1, "starts_on": "2024-03-01"}]}
    resp = client.post("/staff", json=clash, headers=planner)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "postings", 0, "role"]
    assert "already has a grid_leader" in resp.json()["detail"][0]["msg"]
    assert _counts(connection) == before  # not even the person

    # Change the note and dates; then end it; the history stays.
    pid = posting["id"]
    resp = client.patch(f"/staff/postings/{pid}", json={"note": "兼任", "starts_on": "2024-01-15"}, headers=planner)
    assert resp.status_code == 200 and resp.json()["note"] == "兼任" and resp.json()["starts_on"] == "2024-01-15"
    resp = client.post(f"/staff/postings/{pid}/end", json={"ends_on": "2024-06-30"}, headers=planner)
    assert resp.status_code == 200 and resp.json()["ends_on"] == "2024-06-30"
    # Now a successor may start on 2024-07-01.
    nxt = client.post(
        f"/staff/people/{person['id']}/postings",
        json={"role": "grid_leader", "area_code": G2, "starts_on": "2024-07-01"},
        headers=planner,
    )
    assert nxt.status_code == 201, nxt.text
    actions = (
        connection.execute(
            sa.text("SELECT action FROM audit_log WHERE action LIKE 'posting.%' OR action LIKE 'person.%' ORDER BY id")
        )
        .scalars()
        .all()
    )
    assert actions == ["person.create", "posting.create", "posting.update", "posting.end", "posting.create"]

    # Listing: filters, and masking below dispatcher.
    viewer = make_key("viewer")
    listed = client.get("/staff", params={"area_code": G1}, headers=viewer).json()
    assert listed["total"] == 1 and listed["items"][0]["name"] == "王**"
    assert listed["items"][0]["id_card"] == card(1)[:6] + "********" + card(1)[-4:]
    active = client.get("/staff", params={"role": "grid_leader", "active_on": "2024-08-01"}, headers=planner).json()
    assert [i["area_code"] for i in active["items"]] == [G2]


@pytest.mark.parametrize(
    ("path_body", "loc", "words"),
    [
        ({"name": "甲", "phone": "12345"}, ["body", "phone"], "not a phone"),
        ({"name": "甲", "id_card": card(2)[:17] + "Y"}, ["body", "id_card"], "17 digits"),
        ({"name": ""}, ["body", "name"], "at least 1"),
    ],
)
def test_person_422s(client: TestClient, connection: Connection, planner, path_body, loc, words) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/staff", json=path_body, headers=planner)
    assert resp.status_code == 422
    detail = resp.json()["detail"][0]
    assert detail["loc"] == loc and words in detail["msg"]
    assert _counts(connection) == (0, 0)


@pytest.mark.parametrize(
    ("posting", "field", "words"),
    [
        ({"role": "grid_worker", "area_code": "330421999999999"}, "area_code", "no area"),
        (
            {"role": "grid_worker", "area_code": G1, "starts_on": "2024-05-01", "ends_on": "2024-04-01"},
            "ends_on",
            "ends before",
        ),
        ({"role": "beat_officer", "area_code": G1}, "layer", "posted to a beat"),
        ({"role": "grid_boss", "area_code": G1}, "role", "Input should be"),
        ({"role": "grid_worker", "area_code": G1, "org_unit": "NOPE"}, "org_unit", "no organisation unit"),
    ],
)
def test_posting_422s(client: TestClient, connection: Connection, planner, posting, field, words) -> None:  # type: ignore[no-untyped-def]
    person = client.post("/staff", json={"name": "乙"}, headers=planner).json()
    before = _counts(connection)
    resp = client.post(f"/staff/people/{person['id']}/postings", json=posting, headers=planner)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"][0]
    assert detail["loc"][-1] == field and words in detail["msg"]
    assert _counts(connection) == before


def test_writes_need_a_planner_and_unknown_ids_are_404(client: TestClient, make_key, planner) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/staff", json={"name": "丙"}, headers=make_key("dispatcher")).status_code == 403
    assert client.post("/staff/postings/999999/end", headers=planner).status_code == 404
    assert client.get("/staff/people/999999", headers=planner).status_code == 404


def test_org_units_and_staffing_report(client: TestClient, connection: Connection, planner, make_key) -> None:  # type: ignore[no-untyped-def]
    unit = {"code": "V1", "name": "东门村工作站", "kind": "village_station", "area_code": VILLAGE, "is_key": True}
    assert client.post("/org-units", json=unit, headers=planner).status_code == 201
    bad = client.post("/org-units", json={**unit, "code": "V2", "area_code": "999"}, headers=planner)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "area_code"]
    people = [
        ("甲", [{"role": "grid_worker", "area_code": G1, "org_unit": "V1"}, {"role": "aux_police", "area_code": G1}]),
        ("乙", [{"role": "grid_worker", "area_code": G2, "ends_on": "2099-01-10"}]),
        ("丙", [{"role": "micro_grid_leader", "area_code": G1 + "01"}]),
    ]
    for name, postings in people:
        assert client.post("/staff", json={"name": name, "postings": postings}, headers=planner).status_code == 201
    connection.execute(
        sa.text(
            "INSERT INTO buildings (code, households, new_residents, geom) "
            "VALUES ('B1', 30, 12, ST_SetSRID(ST_MakePoint(120.905, 30.834), 4326))"
        )
    )
    members = client.get("/org-units/V1/members", headers=planner).json()
    assert [m["name"] for m in members["items"]] == ["甲"]
    listed = client.get("/org-units", params={"is_key": True}, headers=planner).json()
    assert [(u["code"], u["members"]) for u in listed] == [("V1", 1)]

    report = client.get("/staffing", params={"on": "2099-01-01", "within_days": 30}, headers=planner).json()
    # The same figures counted directly from the rows.
    grids = connection.execute(sa.text("SELECT code, households FROM areas WHERE layer = 'grid'")).all()
    micro = connection.execute(sa.text("SELECT code FROM areas WHERE layer = 'micro_grid'")).scalars().all()
    aux = {G1}
    workers = {G1: 1, G2: 1}
    assert report["summary"]["grids"] == len(grids)
    assert {g["code"] for g in report["grids_without_aux_police"]} == {c for c, _ in grids} - aux
    by_code = {g["code"]: g for g in report["grids"]}
    households = dict(grids)
    assert by_code[G1]["households_per_worker"] == round(households[G1] / workers[G1], 1)
    assert by_code[G1]["new_residents"] == 12 and by_code[G1]["new_residents_per_worker"] == 12.0
    assert by_code[G2]["new_residents_per_worker"] == 0.0
    assert report["summary"]["households_per_worker"] == round(sum(households.values()) / 2, 1)
    assert {m["code"] for m in report["micro_grids_without_leader"]} == set(micro) - {G1 + "01"}
    assert [v["village_code"] for v in report["key_villages_without_community_police"]] == [VILLAGE]
    assert [p["name"] for p in report["postings_ending_soon"]] == ["乙"]
    # A community police officer posted to a grid of the key village fills the gap.
    client.post(
        "/staff", json={"name": "丁", "postings": [{"role": "community_police", "area_code": G2}]}, headers=planner
    )
    again = client.get("/staffing", params={"on": "2099-01-01"}, headers=planner).json()
    assert again["summary"]["key_villages_without_community_police"] == 0

    xlsx = client.get("/staffing", params={"format": "xlsx", "on": "2099-01-01"}, headers=planner)
    assert xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert "无辅警网格" in book.sheetnames and book["无辅警网格"].max_row == len(grids)  # header + all but one
    layer = client.get("/staffing/grids.geojson", params={"on": "2099-01-01"}, headers=make_key("viewer")).json()
    gaps = {f["properties"]["code"]: f["properties"]["gap"] for f in layer["features"]}
    assert len(gaps) == len(grids) and all(gaps.values())  # no grid has a leader


def test_a_person_who_leaves_has_their_postings_ended(client: TestClient, connection: Connection, planner) -> None:  # type: ignore[no-untyped-def]
    from gis.people.rules import county_today

    body = {"name": "戊", "postings": [{"role": "aux_police", "area_code": G1, "starts_on": "2024-01-01"}]}
    person = client.post("/staff", json=body, headers=planner).json()
    resp = client.patch(f"/staff/people/{person['id']}", json={"status": "left"}, headers=planner)
    assert resp.status_code == 200
    assert resp.json()["status"] == "left"
    assert resp.json()["postings"][0]["ends_on"] == county_today().isoformat()  # ended, not deleted
    assert (
        client.get("/staff", params={"active_on": "2099-01-01", "area_code": G1}, headers=planner).json()["total"] == 0
    )
    bad = client.patch(f"/staff/people/{person['id']}", json={"id_card": "123"}, headers=planner)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "id_card"]


def test_staffing_map_page(client: TestClient, planner, make_key) -> None:  # type: ignore[no-untyped-def]
    body = {
        "name": "己",
        "postings": [{"role": "grid_leader", "area_code": G1}, {"role": "grid_worker", "area_code": G1}],
    }
    assert client.post("/staff", json=body, headers=planner).status_code == 201
    page = client.get("/maps/staffing", params={"key": make_key("viewer")["X-API-Key"], "lang": "en"})
    assert page.status_code == 200
    assert "Grid staffing" in page.text and "no auxiliary police" in page.text
    # G1 has a leader and a worker but no aux police; the others have nobody.
    assert page.text.count("#fc8d59") >= 2 and page.text.count("#d7301f") >= 8
