"""/kpis (JSON, XLSX, 422 naming the parameter) and callbacks over HTTP, inside the caller's scope."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _incident(conn: Connection, status: str, x: float, closed_ago_days: float = 1.0) -> int:
    now = dt.datetime.now(dt.UTC)
    reported = now - dt.timedelta(days=closed_ago_days, hours=3)
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, accepted_at, closed_at, "
                "closed_level, geom) VALUES ('dispute', 'hotline_12345', :r, :s, :d, :a, :c, :l, "
                "ST_SetSRID(ST_MakePoint(:x, 30.835), 4326)) RETURNING id"
            ),
            {
                "r": reported,
                "s": status,
                "d": reported + dt.timedelta(hours=48),
                "a": reported + dt.timedelta(minutes=10),
                "c": reported + dt.timedelta(hours=3) if status == "closed" else None,
                "l": "grid" if status == "closed" else None,
                "x": x,
            },
        ).scalar_one()
    )


def test_kpis_json_groups_and_xlsx(client: TestClient, connection: Connection, mini_county, make_key) -> None:  # type: ignore[no-untyped-def]
    for x in (120.905, 120.906, 120.925):
        _incident(connection, "closed", x)
    _incident(connection, "dispatched", 120.925)
    viewer = make_key("viewer")
    resp = client.get("/kpis", params={"period": "year", "group_by": "town"}, headers=viewer)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"]["kpis"]["reported"] == 4
    assert body["total"]["kpis"]["closure_rate"] == 0.75
    assert body["total"]["kpis"]["accept_p50_min"] == 10.0
    assert {g["key"]: g["kpis"]["reported"] for g in body["groups"]} == {"330421001": 2, "330421002": 2}
    assert "按时办结率" in {d["label"] for d in body["definitions"].values()}
    scoped = client.get("/kpis", params={"period": "year"}, headers=make_key("viewer", "t2", scope="330421002"))
    assert scoped.json()["total"]["kpis"]["reported"] == 2
    book = client.get("/kpis", params={"period": "year", "format": "xlsx"}, headers=viewer)
    assert book.status_code == 200 and book.headers["content-type"] == XLSX and book.content[:2] == b"PK"


def test_kpis_bad_parameters_name_themselves(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    viewer = make_key("viewer")
    cases = [
        ({"group_by": "street"}, "group_by"),
        ({"period": "decade"}, "period"),
        ({"date": "2026-13-01"}, "date"),
        ({"start": "2026-05-01", "end": "2026-04-01"}, "start"),
    ]
    for params, field in cases:
        resp = client.get("/kpis", params=params, headers=viewer)
        assert resp.status_code == 422, (params, resp.text)
        assert field in str(resp.json()["detail"]), (field, resp.text)


def test_callback_over_http(client: TestClient, connection: Connection, mini_county, make_key) -> None:  # type: ignore[no-untyped-def]
    closed = _incident(connection, "closed", 120.905)
    open_one = _incident(connection, "dispatched", 120.905)
    dispatcher = make_key("dispatcher")
    due = client.get("/callbacks/due", headers=dispatcher).json()
    assert [d["id"] for d in due] == [closed]
    other_town = make_key("dispatcher", "d2", scope="330421002")
    assert (
        client.post(f"/incidents/{closed}/callback", json={"result": "satisfied"}, headers=other_town).status_code
        == 404
    )
    assert client.post(f"/incidents/{closed}/callback", json={"result": "meh"}, headers=dispatcher).status_code == 422
    assert (
        client.post(f"/incidents/{open_one}/callback", json={"result": "satisfied"}, headers=dispatcher).status_code
        == 409
    )
    resp = client.post(f"/incidents/{closed}/callback", json={"result": "basically_satisfied"}, headers=dispatcher)
    assert resp.status_code == 201 and resp.json()["reopened"] is False
    assert client.get("/callbacks/due", headers=dispatcher).json() == []
    kpis = client.get("/kpis", params={"period": "year"}, headers=dispatcher).json()["total"]["kpis"]
    assert kpis["callbacks"] == 1 and kpis["satisfaction_rate"] == 1.0
