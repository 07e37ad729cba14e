"""People in a boundary draft over the API: the plan (masked by role), decisions, refusal, publish."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.people import write
from gis.people.roster import list_postings
from gis.people.rules import county_today

G1, G2, G3 = "330421001001001", "330421001001002", "330421001001003"


def _post(conn: Connection, name: str, role: str, code: str) -> int:
    person = write.create_person(conn, "hr", name=name, phone="13812345678")
    return int(
        write.add_posting(conn, "hr", person["id"], {"role": role, "area_code": code, "starts_on": "2024-01-01"})["id"]
    )


def test_split_refused_then_decided_and_published(
    client: TestClient, make_key, mini_county, connection: Connection
) -> None:
    planner, viewer, dispatcher = make_key("planner"), make_key("viewer"), make_key("dispatcher")
    worker = _post(connection, "李一员", "grid_worker", G1)
    _post(connection, "张一长", "grid_leader", G1)
    _post(connection, "刘二员", "grid_worker", G1)
    d = client.post("/boundaries/drafts", json={"layer": "grid", "scope_code": "330421001"}, headers=planner).json()[
        "id"
    ]
    split = {"op": "split", "code": G1, "new_code": G3, "line": [[120.899, 30.835], [120.911, 30.835]]}
    assert client.post(f"/boundaries/drafts/{d}/operations", json=split, headers=planner).status_code == 200

    refused = client.post(f"/boundaries/drafts/{d}/publish", json={"note": "split"}, headers=planner)
    assert refused.status_code == 422
    assert f"grid {G3} would have no grid_leader" in refused.json()["detail"]
    assert {"no_grid_leader", "no_grid_worker"} <= {f["kind"] for f in refused.json()["report"]["findings"]}

    plan = client.get(f"/boundaries/drafts/{d}/postings", headers=viewer).json()
    assert sorted(s["code"] for s in plan["successors"][G1]) == [G1, G3] and plan["moves"] == []

    bad = client.post(
        f"/boundaries/drafts/{d}/postings", json={"action": "move", "posting_id": worker}, headers=planner
    )
    assert bad.status_code == 422 and "to_code" in bad.json()["detail"]
    assert (
        client.post(
            f"/boundaries/drafts/{d}/postings",
            json={"action": "move", "posting_id": worker, "to_code": G3},
            headers=viewer,
        ).status_code
        == 403
    )
    moved = client.post(
        f"/boundaries/drafts/{d}/postings",
        json={"action": "move", "posting_id": worker, "to_code": G3},
        headers=planner,
    )
    assert moved.status_code == 201, moved.text
    leader = write.create_person(connection, "hr", name="赵新长")
    added = client.post(
        f"/boundaries/drafts/{d}/postings",
        json={"action": "add", "person_id": leader["id"], "role": "网格长", "to_code": G3},
        headers=planner,
    )
    assert added.status_code == 201 and added.json()["role"] == "grid_leader"

    masked = client.get(f"/boundaries/drafts/{d}/impact", headers=viewer).json()["postings"]["moves"]
    assert [(m["action"], m["name"], m["from_code"], m["to_code"]) for m in masked] == [
        ("move", "李**", G1, G3),
        ("add", "赵**", None, G3),
    ]
    assert masked[0]["phone"] == "138****5678"
    seen = client.get(f"/boundaries/drafts/{d}/postings", headers=dispatcher).json()["moves"]
    assert [m["name"] for m in seen] == ["李一员", "赵新长"]
    page = client.get(f"/maps/boundaries/drafts/{d}/impact", params={"key": viewer["X-API-Key"]}).text
    assert "人员调整 postings" in page and "李**" in page and "李一员" not in page

    published = client.post(f"/boundaries/drafts/{d}/publish", json={"note": "split"}, headers=planner)
    assert published.status_code == 200, published.text
    assert sorted(p["action"] for p in published.json()["postings"]) == ["end", "start", "start"]
    team = {(p["role"], p["name"]) for p in _team_today(connection, G3)}
    assert team == {("grid_worker", "李一员"), ("grid_leader", "赵新长")}
    # A published draft takes no more decisions.
    late = client.post(
        f"/boundaries/drafts/{d}/postings", json={"action": "end", "posting_id": worker}, headers=planner
    )
    assert late.status_code == 409


def _team_today(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Postings in force today on ``code``; each must have started today (a move, not an old row)."""
    _, rows = list_postings(conn, area_code=code, active_on=county_today())
    assert all(r["starts_on"] == county_today() for r in rows)
    return rows
