"""/hotlines/{code}: 12345 and 110 tickets in their own field names, idempotent by the ticket number,
the editable category table, 4xx naming the hotline's own field, and the callback settings."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

TICKET_12345 = {
    "gdbh": "GD20261203000123",
    "wtfl": "0301",
    "sqnr": "楼下夜间施工噪音扰民",
    "jd": 120.905,
    "wd": 30.835,
    "ldrxm": "李四",
    "lddh": "13900000000",
    "ldsj": "2026-12-03 09:15:00",
    "qtzd": "other fields of the ticket are ignored",
}
ALARM_110 = {"jjdbh": "330421202612030042", "bjlb": "10", "bjnr": "两人因停车发生争执", "jd": "120.935", "wd": "30.845"}


@pytest.fixture
def admin(client: TestClient, make_key, mini_county) -> dict[str, str]:  # type: ignore[no-untyped-def]
    headers = make_key("admin")
    for code, theirs, ours in (("12345", "0301", "noise"), ("110", "10", "dispute")):
        answer = client.put(
            f"/hotlines/{code}/categories/{theirs}", json={"category": ours, "their_name": ours}, headers=headers
        )
        assert answer.status_code == 200, answer.text
    return headers


def _count(connection: Connection) -> int:
    return int(connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one())


def test_a_12345_ticket_becomes_an_incident_once(client: TestClient, connection: Connection, admin, make_key) -> None:  # type: ignore[no-untyped-def]
    hotline = make_key("reporter", name="12345-gateway")
    first = client.post("/hotlines/12345/incidents", json=TICKET_12345, headers=hotline)
    assert first.status_code == 201, first.text
    incident = first.json()
    assert incident["source"] == "hotline_12345" and incident["external_id"] == TICKET_12345["gdbh"]
    assert incident["category"] == "noise" and incident["grid_code"].startswith("330421001001")
    assert incident["description"] == TICKET_12345["sqnr"]
    again = client.post("/hotlines/12345/incidents", json=TICKET_12345, headers=hotline)
    assert again.status_code == 200 and again.json()["id"] == incident["id"]
    assert _count(connection) == 1
    # The same number from the other hotline is another ticket.
    other = client.post("/hotlines/110/incidents", json={**ALARM_110, "jjdbh": TICKET_12345["gdbh"]}, headers=hotline)
    assert other.status_code == 201 and other.json()["id"] != incident["id"]
    assert other.json()["source"] == "hotline_110" and other.json()["category"] == "dispute"


@pytest.mark.parametrize(
    ("code", "change", "field"),
    [
        ("12345", {"wtfl": "9999"}, "wtfl"),  # not in the category table
        ("12345", {"wtfl": None}, "wtfl"),
        ("12345", {"gdbh": None}, "gdbh"),
        ("12345", {"jd": "east"}, "jd"),
        ("12345", {"wd": 95.0}, "wd"),
        ("12345", {"lddh": "call me"}, "lddh"),
        ("12345", {"ldsj": "yesterday-ish"}, "ldsj"),
        ("110", {"bjlb": "77"}, "bjlb"),
        ("110", {"jd": None, "wd": None}, "jd"),  # no place at all
    ],
)
def test_bad_tickets_are_422_naming_their_field(  # type: ignore[no-untyped-def]
    client: TestClient, connection: Connection, admin, code: str, change: dict, field: str
) -> None:
    base = TICKET_12345 if code == "12345" else ALARM_110
    body = {k: v for k, v in {**base, **change}.items() if v is not None}
    answer = client.post(f"/hotlines/{code}/incidents", json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", field], detail
    assert _count(connection) == 0


def test_unknown_hotline_inactive_hotline_and_roles(client: TestClient, admin, make_key) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/hotlines/119/incidents", json=TICKET_12345, headers=admin).status_code == 404
    viewer = make_key("viewer")
    assert client.post("/hotlines/12345/incidents", json=TICKET_12345, headers=viewer).status_code == 403
    assert client.put("/hotlines/12345", json={"active": False}, headers=admin).status_code == 200
    off = client.post("/hotlines/12345/incidents", json=TICKET_12345, headers=admin)
    assert off.status_code == 403 and "switched off" in off.json()["detail"]
    west = make_key("reporter", name="west", scope="330421001")
    outside = client.post("/hotlines/110/incidents", json=ALARM_110, headers=west)  # in the east town
    assert outside.status_code == 403


def test_category_table_is_editable(client: TestClient, admin, make_key) -> None:  # type: ignore[no-untyped-def]
    table = client.get("/hotlines/12345/categories", headers=make_key("viewer")).json()
    assert [(r["their_code"], r["category"]) for r in table] == [("0301", "noise")]
    moved = client.put("/hotlines/12345/categories/0301", json={"category": "environment"}, headers=admin)
    assert moved.status_code == 200 and moved.json()["category"] == "environment"
    bad = client.put("/hotlines/12345/categories/0302", json={"category": "aliens"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "category"]
    planner = make_key("planner")
    assert client.put("/hotlines/12345/categories/0303", json={"category": "noise"}, headers=planner).status_code == 403
    town_admin = make_key("admin", name="town-admin", scope="330421001")
    refused = client.put("/hotlines/12345/categories/0303", json={"category": "noise"}, headers=town_admin)
    assert refused.status_code == 403 and "county-wide" in refused.json()["detail"]
    assert client.delete("/hotlines/12345/categories/0301", headers=admin).status_code == 204
    assert client.delete("/hotlines/12345/categories/0301", headers=admin).status_code == 404
    unmapped = client.post("/hotlines/12345/incidents", json=TICKET_12345, headers=admin)
    assert unmapped.status_code == 422 and "PUT /hotlines/12345/categories/0301" in unmapped.json()["detail"][0]["msg"]


def test_callback_settings(client: TestClient, admin) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/hotlines/12345", headers=admin).json()["callback_url"] is None
    bad = client.put("/hotlines/12345", json={"callback_url": "gopher://x"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "callback_url"]
    made = client.put("/hotlines/12345", json={"callback_url": "https://12345.example.gov.cn/cb"}, headers=admin).json()
    assert made["callback_url"] == "https://12345.example.gov.cn/cb" and len(made["secret"]) >= 32  # shown once
    shown = client.get("/hotlines/12345", headers=admin).json()
    assert shown["secret"] == made["secret"][:4] + "…"
    log = client.get("/hotlines/12345/deliveries", headers=admin)
    assert log.status_code == 200 and log.json()["total"] == 0
