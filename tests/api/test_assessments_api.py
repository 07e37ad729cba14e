"""/assessments, /assessments.xlsx, /assessments/adjustments and /assessment-schemes: scope (404
outside), the XLSX workbook against the JSON, roles, and bad input naming the field."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from tests.assessment_data import G1, G_OTHER, MONTH, TOWN1, TOWN2, Data, seed


@pytest.fixture
def data(connection, mini_county) -> Data:  # type: ignore[no-untyped-def]
    return seed(connection)


def test_a_scoped_key_sees_only_its_people_and_grids(client, make_key, data) -> None:  # type: ignore[no-untyped-def]
    town2 = make_key("viewer", "town2-viewer", TOWN2)
    a, c = data.people["A"], data.people["C"]
    rows = client.get("/assessments", params={"period": MONTH, "level": "person"}, headers=town2).json()["rows"]
    assert [r["key"] for r in rows] == [str(c)]
    grids = client.get("/assessments", params={"period": MONTH, "level": "grid"}, headers=town2).json()["rows"]
    assert G_OTHER in {r["key"] for r in grids} and G1 not in {r["key"] for r in grids}
    for params in (
        {"period": MONTH, "level": "person", "key": str(a)},
        {"period": MONTH, "level": "grid", "key": G1},
        {"period": MONTH, "level": "grid", "area": TOWN1},
    ):
        r = client.get("/assessments", params=params, headers=town2)
        assert r.status_code == 404, params
        assert client.get("/assessments.xlsx", params=params, headers=town2).status_code == 404
    planner = make_key("planner", "town2-planner", TOWN2)
    body = {"period": MONTH, "level": "person", "key": str(a), "points": 2, "reason": "表扬"}
    assert client.post("/assessments/adjustments", json=body, headers=planner).status_code == 404
    # inside the scope the same key's adjustment is taken
    assert client.post("/assessments/adjustments", json={**body, "key": str(c)}, headers=planner).status_code == 201


@pytest.mark.parametrize(("url", "extra"), [("/assessments.xlsx", {}), ("/assessments", {"format": "xlsx"})])
def test_the_workbook_matches_the_json(client, admin_headers, data, url, extra) -> None:  # type: ignore[no-untyped-def]
    params = {"period": MONTH, "level": "grid", "area": TOWN1}
    client.post("/assessments/adjustments", headers=admin_headers,
                json={"period": MONTH, "level": "grid", "key": G1, "points": -3, "reason": "台账不全"})  # fmt: skip
    js = client.get("/assessments", params=params, headers=admin_headers).json()
    r = client.get(url, params={**params, **extra}, headers=admin_headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    sheet = book["考核 scores"]
    head = [c.value for c in sheet[1]]
    rows = [dict(zip(head, (c.value for c in line), strict=True)) for line in sheet.iter_rows(min_row=2)]
    assert [x["key"] for x in rows] == [x["key"] for x in js["rows"]] and len(rows) >= 2
    for got, want in zip(rows, js["rows"], strict=True):
        assert got["rank"] == want["rank"] and got["total"] == pytest.approx(want["total"])
        assert got["adjustment_points"] == pytest.approx(want["adjustment_points"])
        for i in want["indicators"]:
            for part in ("raw", "score", "weight"):
                assert got[f"{i['name']} {part}"] == pytest.approx(i[part]), (want["key"], i["name"], part)
    adjusted = [line for line in book["调整 adjustments"].iter_rows(min_row=2, values_only=True)]
    assert adjusted[0][:3] == (G1, -3, "台账不全")
    rules = {line[0]: line for line in book["口径 indicators"].iter_rows(min_row=2, values_only=True)}
    assert set(rules) == {i["name"] for i in js["indicators"]}


def test_schemes_for_admins_and_adjustments_audited(client, make_key, admin_headers, connection, data) -> None:  # type: ignore[no-untyped-def]
    body = {"year": 2026, "indicators": [{"name": "visits", "weight": 70, "target": 1.0, "floor": 0.0},
                                          {"name": "overdue", "weight": 30, "target": 0, "floor": 2}]}  # fmt: skip
    assert client.post("/assessment-schemes", json=body, headers=make_key("planner")).status_code == 403
    made = client.post("/assessment-schemes", json=body, headers=admin_headers)
    assert made.status_code == 201 and made.json()["version"] == 1
    listed = client.get("/assessment-schemes", params={"year": 2026}, headers=admin_headers).json()
    assert [s["version"] for s in listed["schemes"]] == [1] and len(listed["indicators"]) == 9
    one = client.get(f"/assessment-schemes/{made.json()['id']}", headers=admin_headers).json()
    assert one["indicators"] == made.json()["indicators"] and one["pinned_months"] == []
    assert client.get("/assessment-schemes/999999", headers=admin_headers).status_code == 404
    a = str(data.people["A"])
    adj = {"period": MONTH, "level": "person", "key": a, "points": 5, "reason": "专项工作加分"}
    assert client.post("/assessments/adjustments", json=adj, headers=make_key("viewer")).status_code == 403
    assert client.post("/assessments/adjustments", json=adj, headers=admin_headers).status_code == 201
    out = client.get("/assessments", params={"period": MONTH, "key": a}, headers=admin_headers).json()
    (row,) = out["rows"]
    assert out["scheme"]["version"] == 1 and [i["weight"] for i in row["indicators"]] == [70, 30]
    assert row["adjustment_points"] == 5 and row["total"] == pytest.approx(row["base_score"] + 5)
    assert row["adjustments"][0]["reason"] == "专项工作加分"
    audited = connection.execute(
        sa.text("SELECT count(*) FROM audit_log WHERE action = 'assessment.adjust' AND target LIKE :t"),
        {"t": f"assessment/person/{a}/%"},
    ).scalar()
    assert audited == 1
    too_much = client.post("/assessments/adjustments", json={**adj, "points": 6}, headers=admin_headers)
    assert too_much.status_code == 422 and too_much.json()["detail"][0]["loc"] == ["body", "points"]


@pytest.mark.parametrize(
    ("method", "url", "payload", "loc", "value"),
    [
        ("get", "/assessments", {"period": "2026-13"}, ["query", "period"], "2026-13"),
        ("get", "/assessments", {"period": MONTH, "level": "town"}, ["query", "level"], "town"),
        ("get", "/assessments", {"period": MONTH, "sort": "height"}, ["query", "sort"], "height"),
        ("post", "/assessment-schemes", {"year": 2026, "indicators": [
            {"name": "speed", "weight": 100, "target": 1, "floor": 0}]}, ["body", "indicators", "0", "name"], "speed"),
        ("post", "/assessment-schemes", {"year": 2026, "indicators": [
            {"name": "visits", "weight": 50, "target": 1, "floor": 0}]}, ["body", "indicators", "weight"], 50.0),
        ("post", "/assessments/adjustments", {"period": "03/2026", "level": "person", "key": "1", "points": 1,
                                              "reason": "x"}, ["body", "period"], "03/2026"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field_and_value(client, admin_headers, data, method, url, payload, loc, value) -> None:  # type: ignore[no-untyped-def]
    if method == "get":
        r = client.get(url, params=payload, headers=admin_headers)
    else:
        r = client.post(url, json=payload, headers=admin_headers)
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == loc and item["input"] == value and str(value) in item["msg"]
