from __future__ import annotations

from gis.core import audit


def test_audit_search_filters_and_needs_admin(client, connection, make_key) -> None:  # type: ignore[no-untyped-def]
    audit.record(connection, "alice", "incident.create", "incident:1", category="fire")
    audit.record(connection, "bob", "incident.transition", "incident:1", to="accepted")
    audit.record(connection, "bob", "boundaries.publish", "generation:2", note="redraw")
    audit.record(connection, "eve", "key.create", "x'; DROP TABLE audit_log; --")

    assert client.get("/audit", headers=make_key("planner")).status_code == 403
    admin = make_key("admin")
    body = client.get("/audit", params={"action": "incident."}, headers=admin).json()
    assert body["total"] == 2
    assert [e["actor"] for e in body["items"]] == ["bob", "alice"]  # newest first
    assert client.get("/audit", params={"actor": "bob"}, headers=admin).json()["total"] == 2
    # SQL-looking text is matched as text
    hit = client.get("/audit", params={"target": "x'; DROP TABLE audit_log; --"}, headers=admin).json()
    assert hit["total"] == 1 and hit["items"][0]["actor"] == "eve"
    assert client.get("/audit", params={"action": "incident%"}, headers=admin).json()["total"] == 0
    page = client.get("/audit", params={"limit": 1, "offset": 1}, headers=admin).json()
    assert page["total"] >= 4 and len(page["items"]) == 1
    assert client.get("/audit", params={"limit": 0}, headers=admin).status_code == 422
