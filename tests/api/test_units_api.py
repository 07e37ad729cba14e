"""GET /grids/{code} and GET /beats/{code}: hierarchy, staff, overlaps in %, incident counts."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

GRID_W = "330421001001001"  # x 120.900..120.910: all in beat 0101 (x < 120.913)
GRID_E = "330421001001002"  # x 120.910..120.920: 30 % in beat 0101, 70 % in beat 0102


@pytest.fixture
def county(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    connection.execute(
        sa.text(
            "INSERT INTO staff (grid_code, role, name, phone) VALUES "
            "(:w, 'grid_leader', '王五', '13900000001'), (:w, 'aux_police', '赵六', '13900000003'), "
            "(:e, 'aux_police', '孙八', '13900000008')"
        ),
        {"w": GRID_W, "e": GRID_E},
    )
    now = dt.datetime.now(dt.UTC)
    incidents = [
        ("reported", now - dt.timedelta(days=1), now - dt.timedelta(hours=1)),  # open, overdue
        ("dispatched", now - dt.timedelta(days=2), now + dt.timedelta(days=1)),  # open
        ("closed", now - dt.timedelta(days=40), now - dt.timedelta(days=39)),  # old, closed
    ]
    for status, reported, deadline in incidents:
        connection.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, geom) "
                "VALUES ('litter', 'patrol', :r, :s, :d, ST_SetSRID(ST_MakePoint(120.905, 30.834), 4326))"
            ),
            {"r": reported, "s": status, "d": deadline},
        )
    connection.execute(
        sa.text(
            "INSERT INTO buildings (code, households, geom) "
            "VALUES ('B1', 12, ST_SetSRID(ST_MakePoint(120.905, 30.834), 4326))"
        )
    )


def test_grid_details(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(f"/grids/{GRID_W}", headers=make_key("dispatcher"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["village"]["code"] == "330421001001" and body["town"]["code"] == "330421001"
    assert body["county"]["code"] == "330421"
    assert body["households"] == 400 and body["households_counted"] == 12
    assert [m["code"] for m in body["micro_grids"]] == [GRID_W + "01", GRID_W + "02"]
    assert [(s["role"], s["name"], s["phone"]) for s in body["staff"]] == [
        ("grid_leader", "王五", "13900000001"),
        ("aux_police", "赵六", "13900000003"),
    ]
    assert [b["code"] for b in body["beats"]] == ["330421P0101"]
    assert body["beats"][0]["pct_of_grid"] == pytest.approx(100, abs=0.01)
    assert body["beats"][0]["station"] == {"code": "330421P01", "name": "测试一派出所"}
    assert body["incidents"] == {"open": 2, "pending": 2, "overdue": 1, "escalated": 0, "total_30d": 2}


def test_grid_split_between_beats_and_masking(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    body = client.get(f"/grids/{GRID_E}", headers=make_key("viewer")).json()
    shares = {b["code"]: b["pct_of_grid"] for b in body["beats"]}
    assert shares == {"330421P0102": pytest.approx(70, abs=0.2), "330421P0101": pytest.approx(30, abs=0.2)}
    assert list(shares) == ["330421P0102", "330421P0101"]  # largest share first
    assert sum(shares.values()) == pytest.approx(100, abs=0.01)
    assert body["staff"] == [
        {"role": "aux_police", "name": "孙*", "phone": "139****0008", "layer": "grid", "area_code": GRID_E}
    ]


def test_beat_pairs_grids_with_their_aux_police(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/beats/330421P0101", headers=make_key("viewer")).json()
    assert body["station"] == {"code": "330421P01", "name": "测试一派出所"}
    grids = {g["code"]: g for g in body["grids"]}
    # x 120.900..120.913 over two villages: four grids; the western ones lie entirely inside.
    assert set(grids) == {GRID_W, GRID_E, "330421001002001", "330421001002002"}
    assert grids[GRID_W]["pct_of_grid"] == pytest.approx(100, abs=0.01)
    assert grids[GRID_W]["pct_of_beat"] == pytest.approx(100 * 10 / 26, abs=0.2)
    assert grids[GRID_E]["pct_of_grid"] == pytest.approx(30, abs=0.2)
    assert sum(g["pct_of_beat"] for g in grids.values()) == pytest.approx(100, abs=0.01)
    assert grids[GRID_W]["aux_police"] == [{"role": "aux_police", "name": "赵*", "phone": "139****0003"}]
    assert grids["330421001002001"]["aux_police"] == []
    assert body["incidents"]["open"] == 2


def test_unknown_codes_are_404_naming_the_code(client: TestClient, make_key, county) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("viewer")
    resp = client.get("/grids/999", headers=headers)
    assert resp.status_code == 404 and "'999'" in resp.json()["detail"]
    resp = client.get("/beats/P9", headers=headers)
    assert resp.status_code == 404 and "'P9'" in resp.json()["detail"]
    assert client.get(f"/grids/{GRID_W}").status_code == 401
    bad = client.get(f"/grids/{GRID_W}", params={"as_of": "soon"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "as_of"


def test_as_of_before_a_grid_existed(client: TestClient, make_key, connection: Connection, county) -> None:  # type: ignore[no-untyped-def]
    from boundaries.generations import publish_layers
    from boundaries.sample import build_mini_county

    layers = build_mini_county()
    grids = layers["grid"].copy()
    grids.loc[grids["code"] == GRID_W, "code"] = "330421001001009"
    publish_layers(
        connection, {"grid": grids}, note="recode", author="tests", published_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    )
    headers = make_key("viewer")
    assert client.get(f"/grids/{GRID_W}", headers=headers).status_code == 404
    old = client.get(f"/grids/{GRID_W}", params={"as_of": "2023-06-01"}, headers=headers)
    assert old.status_code == 200 and old.json()["code"] == GRID_W
    assert client.get("/grids/330421001001009", headers=headers).status_code == 200
