"""/org-units/{code}/webhooks and /webhooks/{id}: admin CRUD, the delivery log, a test ping,
422s naming the field, 403 below admin, 404 outside a scoped admin's area."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.outbound import signing
from gis.outbound.fanout import fan_out


@pytest.fixture
def units(client: TestClient, make_key, mini_county) -> dict[str, str]:  # type: ignore[no-untyped-def]
    admin = make_key("admin")
    for code, kind, area in (("T1", "town_centre", "330421001"), ("T2", "town_centre", "330421002")):
        answer = client.post(
            "/org-units", json={"code": code, "name": code, "kind": kind, "area_code": area}, headers=admin
        )
        assert answer.status_code == 201, answer.text
    return admin


def test_webhook_crud_and_secret_shown_once(client: TestClient, units: dict[str, str]) -> None:
    made = client.post(
        "/org-units/T1/webhooks",
        json={"url": "https://msg.example.gov.cn/hook", "events": ["incident.created"]},
        headers=units,
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["org_unit"] == "T1" and hook["events"] == ["incident.created"] and hook["active"] is True
    assert len(hook["secret"]) >= 32  # made for it, shown this once
    listed = client.get("/org-units/T1/webhooks", headers=units).json()
    assert [h["id"] for h in listed] == [hook["id"]] and listed[0]["secret"] == hook["secret"][:4] + "…"
    changed = client.patch(f"/webhooks/{hook['id']}", json={"active": False, "events": []}, headers=units)
    assert changed.status_code == 200 and changed.json()["active"] is False and changed.json()["events"] == []
    assert client.get(f"/webhooks/{hook['id']}", headers=units).json()["active"] is False
    assert client.delete(f"/webhooks/{hook['id']}", headers=units).status_code == 204
    assert client.get(f"/webhooks/{hook['id']}", headers=units).status_code == 404
    assert client.get("/org-units/NOPE/webhooks", headers=units).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x.example/h"}, "url"),
        ({"url": "http:///nohost"}, "url"),
        ({"url": "http://x.example:99999/h"}, "url"),
        ({"url": "http://x.example/h", "events": ["incident.melted"]}, "events"),
        ({"url": "http://x.example/h", "secret": "short"}, "secret"),
    ],
)
def test_bad_webhooks_are_422_naming_the_field(
    client: TestClient, units: dict[str, str], body: dict, field: str
) -> None:
    answer = client.post("/org-units/T1/webhooks", json=body, headers=units)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", field]
    assert client.get("/org-units/T1/webhooks", headers=units).json() == []  # nothing stored


def test_only_admins_and_only_in_scope(client: TestClient, units: dict[str, str], make_key) -> None:  # type: ignore[no-untyped-def]
    hook = client.post("/org-units/T2/webhooks", json={"url": "http://x.example/h"}, headers=units).json()
    planner = make_key("planner")
    assert client.get("/org-units/T2/webhooks", headers=planner).status_code == 403
    assert client.post("/org-units/T2/webhooks", json={"url": "http://x.example/h"}, headers=planner).status_code == 403
    west_admin = make_key("admin", name="west-admin", scope="330421001")
    assert client.get("/org-units/T2/webhooks", headers=west_admin).status_code == 404
    assert client.get(f"/webhooks/{hook['id']}/deliveries", headers=west_admin).status_code == 404
    assert client.delete(f"/webhooks/{hook['id']}", headers=west_admin).status_code == 404
    assert client.get(f"/webhooks/{hook['id']}", headers=units).status_code == 200  # still there
    assert client.get("/org-units/T1/webhooks", headers=west_admin).status_code == 200


def test_delivery_log_and_ping(client: TestClient, connection: Connection, units: dict[str, str], make_key) -> None:  # type: ignore[no-untyped-def]
    connection.execute(
        sa.text("UPDATE outbound_cursor SET last_event_id = (SELECT coalesce(max(id), 0) FROM incident_events)")
    )
    hook = client.post("/org-units/T1/webhooks", json={"url": "http://127.0.0.1:9/h"}, headers=units).json()
    reporter = make_key("reporter")
    report = {"lon": 120.905, "lat": 30.835, "category": "noise", "source": "resident_app"}
    incident = client.post("/incidents", json=report, headers=reporter)
    assert incident.status_code == 201, incident.text
    # The report's intake wrote only its event; the fan-out (a job in production) queues the delivery.
    assert client.get(f"/webhooks/{hook['id']}/deliveries", headers=units).json()["total"] == 0
    fan_out(connection)
    ping = client.post(f"/webhooks/{hook['id']}/test", headers=units)
    assert ping.status_code == 202, ping.text
    log = client.get(f"/webhooks/{hook['id']}/deliveries", headers=units).json()
    assert log["total"] == 2
    newest, first = log["items"]
    assert newest["id"] == ping.json()["delivery_id"] and newest["event_type"] == "webhook.ping"
    assert first["incident_id"] == incident.json()["id"] and first["status"] == "pending" and first["attempts"] == 0
    pending = client.get(f"/webhooks/{hook['id']}/deliveries?status=delivered", headers=units).json()
    assert pending["total"] == 0
    bad = client.get(f"/webhooks/{hook['id']}/deliveries?status=lost", headers=units)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]
    # The payload as it will be signed and sent.
    assert signing.body_bytes(first["payload"]).startswith(b"{")
