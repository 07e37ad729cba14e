"""Dispatch through the API, in the test's transaction: the holders' queues and steps, a
dispatcher's steps, and every refusal answering 4xx naming the problem, with nothing written."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from gis.people.keys import create_key
from tests.dispatch_roster import BEAT1, GRID1, IN_GRID1, TOWN1, Roster, give_holder, make_roster

FUTURE = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()


@pytest.fixture
def roster(connection, mini_county) -> Roster:  # type: ignore[no-untyped-def]
    return make_roster(connection)


@pytest.fixture
def keys(connection, roster: Roster) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    def key(role: str, name: str, scope: str | None = None, **who: int) -> dict[str, str]:
        return {"X-API-Key": create_key(connection, role, name, scope, **who)}

    return {
        "dispatcher": key("dispatcher", "centre"),
        "reporter": key("reporter", "app"),
        "beat": key("reporter", "officer", BEAT1, person_id=roster.beat_officer),
        "aux": key("reporter", "aux", GRID1, person_id=roster.aux_police),
        "worker": key("reporter", "worker", GRID1, person_id=roster.grid_worker),
        "town2": key("dispatcher", "town2", "330421002"),
        "grid1": key("dispatcher", "grid1", GRID1),
        "admin": key("admin", "admin"),
        "station": key("viewer", "station", org_unit_id=roster.units["330421001001-GZZ"]),
    }


def _report(client, keys, category: str = "noise", source: str = "hotline_110", **where: float) -> int:  # type: ignore[no-untyped-def]
    body = {**IN_GRID1, **where, "category": category, "source": source}
    resp = client.post("/incidents", json=body, headers=keys["reporter"])
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _events(connection, iid: int) -> int:  # type: ignore[no-untyped-def]
    return int(
        connection.execute(
            sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :i"), {"i": iid}
        ).scalar_one()
    )


def _detail(resp: Any) -> tuple[list[str], str]:
    item = resp.json()["detail"][0]
    return item["loc"], item["msg"]


def test_a_110_report_is_in_the_officers_and_the_aux_polices_tasks(client, keys, roster) -> None:  # type: ignore[no-untyped-def]
    iid = _report(client, keys)
    for who, role in (("beat", "lead"), ("aux", "co")):
        tasks = client.get("/me/tasks", headers=keys[who]).json()
        assert [(t["incident_id"], t["role"], t["state"], t["source"]) for t in tasks] == [
            (iid, role, "offered", "hotline_110")
        ]
        assert tasks[0]["accept_by"] is not None
    assert client.get("/me/tasks", headers=keys["worker"]).json() == []
    assert client.get("/me/tasks", headers=keys["dispatcher"]).json() == []  # an account of no one holds nothing
    incident = client.get(f"/incidents/{iid}", headers=keys["dispatcher"]).json()
    assert incident["dispatched_at"] is not None and incident["accepted_at"] is None


def test_the_holder_accepts_once_declines_with_a_reason_and_arrives(client, keys, roster, connection) -> None:  # type: ignore[no-untyped-def]
    iid = _report(client, keys)
    ok = client.post(f"/incidents/{iid}/accept", headers=keys["beat"])
    assert ok.status_code == 200 and ok.json()["state"] == "accepted" and ok.json()["accepted_by"] == "officer"
    again = client.post(f"/incidents/{iid}/accept", headers=keys["beat"])
    assert again.status_code == 409 and "already accepted" in again.json()["detail"]
    # Declining needs a reason; nothing is written without one.
    before = _events(connection, iid)
    missing = client.post(f"/incidents/{iid}/decline", json={}, headers=keys["aux"])
    assert missing.status_code == 422 and _detail(missing) == (
        ["body", "reason"],
        "is required: say why the offer is declined",
    )
    assert _events(connection, iid) == before
    declined = client.post(f"/incidents/{iid}/decline", json={"reason": "在外执勤"}, headers=keys["aux"])
    assert declined.status_code == 200 and declined.json()["decline_reason"] == "在外执勤"
    # The grid worker holds nothing on it: 403; an accepted assignment is not declined: 409.
    assert client.post(f"/incidents/{iid}/accept", headers=keys["worker"]).status_code == 403
    assert client.post(f"/incidents/{iid}/decline", json={"reason": "x"}, headers=keys["beat"]).status_code == 409
    arrived = client.post(f"/incidents/{iid}/arrive", json={"lon": 120.9051, "lat": 30.8321}, headers=keys["beat"])
    assert arrived.status_code == 200
    incident = client.get(f"/incidents/{iid}", headers=keys["dispatcher"]).json()
    assert incident["accepted_at"] is not None and incident["on_scene_at"] is not None
    steps = [(e["action"], e["actor"]) for e in incident["history"]]
    assert steps == [("report", "app"), ("dispatch", "system"), ("dispatch", "system"), ("accept", "officer"),
                     ("decline", "aux"), ("arrive", "officer")]  # fmt: skip
    assert client.get("/me/tasks", headers=keys["aux"]).json() == []


def test_dispatch_by_hand_names_what_is_wrong(client, keys, roster, connection) -> None:  # type: ignore[no-untyped-def]
    iid = _report(client, keys, "dispute", "resident_app")  # the grid worker holds the lead
    before = _events(connection, iid)
    cases = [
        ({"person_id": 99999999}, ["body", "person_id"], "no person with id 99999999"),
        ({"person_id": roster.other_worker}, ["body", "person_id"], "not the incident's area"),
        ({"org_unit": "NOPE"}, ["body", "org_unit"], "no organisation unit with code 'NOPE'"),
        ({"org_unit": "330421002-ZHZX"}, ["body", "org_unit"], "not the incident's area"),
        ({"person_id": roster.beat_officer, "org_unit": "330421-ZHZF"}, ["body", "person_id"], "exactly one"),
        ({"person_id": roster.beat_officer, "role": "boss"}, ["body", "role"], "not one of lead, co"),
    ]
    for body, loc, words in cases:
        resp = client.post(f"/incidents/{iid}/dispatch", json=body, headers=keys["dispatcher"])
        assert resp.status_code == 422, (body, resp.text)
        assert _detail(resp)[0] == loc and words in _detail(resp)[1], (body, resp.text)
    # The worker already holds it: 409, and the active lead stays as it was.
    held = client.post(f"/incidents/{iid}/dispatch", json={"person_id": roster.grid_worker, "role": "co"},
                       headers=keys["dispatcher"])  # fmt: skip
    assert held.status_code == 409 and f"person {roster.grid_worker} already holds it" in held.json()["detail"]
    # Outside the dispatcher's scope: the incident is missing (404); a holder outside it, 403.
    assert client.post(f"/incidents/{iid}/dispatch", json={"person_id": roster.beat_officer},
                       headers=keys["town2"]).status_code == 404  # fmt: skip
    outside = client.post(f"/incidents/{iid}/dispatch", json={"org_unit": f"{TOWN1}-ZHZX"}, headers=keys["grid1"])
    assert outside.status_code == 403 and "outside your scope" in outside.json()["detail"]
    assert _events(connection, iid) == before
    tasks = client.get("/me/tasks", headers=keys["worker"]).json()
    assert [(t["incident_id"], t["role"], t["state"]) for t in tasks] == [(iid, "lead", "offered")]


def test_a_re_dispatch_replaces_the_lead_and_an_accepted_incident_becomes_dispatched(client, keys, roster) -> None:  # type: ignore[no-untyped-def]
    iid = _report(client, keys, "dispute", "resident_app")
    assert (
        client.post(f"/incidents/{iid}/transitions", json={"action": "accept"}, headers=keys["dispatcher"]).json()[
            "status"
        ]
        == "accepted"
    )
    resp = client.post(f"/incidents/{iid}/dispatch", json={"person_id": roster.beat_officer, "note": "涉警"},
                       headers=keys["dispatcher"])  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert [(a["role"], a["person_id"], a["state"]) for a in resp.json()] == [("lead", roster.beat_officer, "offered")]
    assert client.get("/me/tasks", headers=keys["worker"]).json() == []
    listing = client.get(f"/incidents/{iid}/assignments", headers=keys["dispatcher"]).json()
    assert [(a["person_id"], a["state"]) for a in listing] == [
        (roster.grid_worker, "withdrawn"),
        (roster.beat_officer, "offered"),
    ]
    incident = client.get(f"/incidents/{iid}", headers=keys["dispatcher"]).json()
    assert incident["status"] == "dispatched"
    last = incident["history"][-1]
    assert (last["action"], last["from_status"], last["to_status"], last["actor"]) == (
        "dispatch",
        "accepted",
        "dispatched",
        "centre",
    )
    assert "replacing assignment" in last["note"]


def test_dispatched_requires_a_holder_and_the_reporter_may_not_close_its_own(
    client, make_key, connection, mini_county
) -> None:  # type: ignore[no-untyped-def]
    # No roster: nobody on duty and no units, so the report has no holder.
    one, other = make_key("dispatcher", "desk-1"), make_key("dispatcher", "desk-2")
    iid = client.post(
        "/incidents", json={**IN_GRID1, "category": "dispute", "source": "resident_app"}, headers=one
    ).json()["id"]
    step = lambda action, key: client.post(f"/incidents/{iid}/transitions", json={"action": action}, headers=key)  # noqa: E731
    assert step("accept", one).status_code == 200
    refused = step("dispatch", one)
    assert refused.status_code == 409 and "no one holds it" in refused.json()["detail"]
    give_holder(connection, iid)
    for action in ("dispatch", "start", "handle"):
        assert step(action, one).status_code == 200
    own = step("verify", one)
    assert own.status_code == 409 and "'desk-1' reported it and may not verify it" in own.json()["detail"]
    assert step("verify", other).status_code == 200 and step("close", other).status_code == 200
    incident = client.get(f"/incidents/{iid}", headers=one).json()
    assert incident["closed_level"] == "grid"
    assert incident["handled_at"] <= incident["verified_at"] <= incident["closed_at"]
    states = connection.execute(sa.text("SELECT state FROM incident_assignments WHERE incident_id = :i"), {"i": iid})
    assert states.scalars().all() == ["done"]


def test_filters_on_assignee_and_assignment_state(client, keys, roster) -> None:  # type: ignore[no-untyped-def]
    police = _report(client, keys)
    dispute = _report(client, keys, "dispute", "resident_app", lon=120.906, lat=30.833)
    ids = lambda q: [i["id"] for i in client.get(f"/incidents?{q}", headers=keys["dispatcher"]).json()["items"]]  # noqa: E731
    assert ids(f"assignee={roster.beat_officer}") == [police]
    assert ids(f"assignee={roster.grid_worker},{roster.aux_police}") == [dispute, police]
    assert ids(f"assignee={roster.aux_police}&assignment_state=accepted") == []
    client.post(f"/incidents/{police}/accept", headers=keys["aux"])
    assert ids(f"assignee={roster.aux_police}&assignment_state=accepted") == [police]
    assert ids("assignment_state=offered") == [dispute, police]
    bad = client.get("/incidents?assignment_state=maybe", headers=keys["dispatcher"])
    assert bad.status_code == 422 and "assignment_state" in bad.text and "maybe" in bad.text


def test_summon_supervise_and_remind(client, keys, roster) -> None:  # type: ignore[no-untyped-def]
    iid = _report(client, keys, "illegal_construction", "resident_app")  # the department is a co-handler already
    summoned = client.post(f"/incidents/{iid}/summon", json={"org_units": ["330421-SZZX"], "report_by": FUTURE},
                           headers=keys["dispatcher"])  # fmt: skip
    assert summoned.status_code == 200, summoned.text
    assert [(a["kind"], a["org_unit"], a["state"]) for a in summoned.json()] == [("summon", "330421-SZZX", "offered")]
    twice = client.post(f"/incidents/{iid}/summon", json={"org_units": ["330421-ZHZF"], "report_by": FUTURE},
                        headers=keys["dispatcher"])  # fmt: skip
    assert twice.status_code == 409
    unknown = client.post(
        f"/incidents/{iid}/summon", json={"org_units": ["X-1"], "report_by": FUTURE}, headers=keys["dispatcher"]
    )
    assert (
        unknown.status_code == 422 and _detail(unknown)[0] == ["body", "org_units"] and "'X-1'" in _detail(unknown)[1]
    )
    past = client.post(f"/incidents/{iid}/summon", json={"org_units": ["330421-SZZX"], "report_by": "2020-01-01T08:00"},
                       headers=keys["dispatcher"])  # fmt: skip
    assert past.status_code == 422 and _detail(past)[0] == ["body", "report_by"]
    order = client.post(f"/incidents/{iid}/supervise", json={"instruction": "三日内拆除并回复", "due_at": FUTURE},
                        headers=keys["dispatcher"])  # fmt: skip
    assert order.status_code == 200 and order.json()["reply"] is None
    reminded = client.post(f"/incidents/{iid}/remind", json={"note": "请加快"}, headers=keys["dispatcher"])
    assert reminded.status_code == 200
    assert set(reminded.json()["reminded"]) == {
        f"person {roster.grid_worker}",
        "org unit 330421-ZHZF",
        "org unit 330421-SZZX",
    }
    history = client.get(f"/incidents/{iid}", headers=keys["dispatcher"]).json()["history"]
    assert [e["action"] for e in history][-3:] == ["summon", "supervise", "remind"]
    assert client.post(f"/incidents/{iid}/remind", headers=keys["reporter"]).status_code == 403  # dispatchers only


def test_a_units_queue_and_the_routing_rules(client, keys, roster, connection) -> None:  # type: ignore[no-untyped-def]
    iid = _report(client, keys, "dispute", "resident_app", lon=120.915, lat=30.832)  # grid 2: no worker on duty
    queue = client.get("/org-units/330421001001-GZZ/queue", headers=keys["dispatcher"]).json()
    assert [(t["incident_id"], t["role"]) for t in queue] == [(iid, "lead")]
    assert [t["incident_id"] for t in client.get("/me/tasks", headers=keys["station"]).json()] == [iid]
    assert client.get("/org-units/NOPE/queue", headers=keys["dispatcher"]).status_code == 404
    assert client.get("/org-units/330421001001-GZZ/queue", headers=keys["town2"]).status_code == 404
    rules = client.get("/routing-rules", headers=keys["dispatcher"]).json()
    assert ("hotline_110", "beat_officer", "lead") in {(r["source"], r["target"], r["role"]) for r in rules}
    bad = client.post("/routing-rules", json={"target": "mayor"}, headers=keys["admin"])
    assert bad.status_code == 422 and _detail(bad)[0] == ["body", "target"]
    no_unit = client.post("/routing-rules", json={"target": "org_unit", "org_unit_code": "NOPE"}, headers=keys["admin"])
    assert no_unit.status_code == 422 and "no organisation unit with code 'NOPE'" in no_unit.text
    made = client.post("/routing-rules", json={"category": "pollution", "target": "org_unit",
                                               "org_unit_code": "330421-ZHZF", "role": "co", "priority": 40},
                       headers=keys["admin"])  # fmt: skip
    assert made.status_code == 201, made.text
    assert client.post("/routing-rules", json={"target": "grid_worker"}, headers=keys["dispatcher"]).status_code == 403
    polluted = _report(client, keys, "pollution", "resident_app", lon=120.906, lat=30.834)
    holders = client.get(f"/incidents/{polluted}/assignments", headers=keys["dispatcher"]).json()
    assert {(a["role"], a["person_id"], a["org_unit"]) for a in holders} == {
        ("lead", roster.grid_worker, None),
        ("co", None, "330421-ZHZF"),
    }
    off = client.post(f"/routing-rules/{made.json()['id']}/disable", headers=keys["admin"])
    assert off.status_code == 200 and off.json()["enabled"] is False


def test_a_supervision_order_is_answered_once_by_a_holder(client, keys, roster, connection) -> None:  # type: ignore[no-untyped-def]
    iid = _report(client, keys, "dispute", "resident_app")  # the grid worker holds it
    order = client.post(f"/incidents/{iid}/supervise", json={"instruction": "限期化解", "due_at": FUTURE},
                        headers=keys["dispatcher"]).json()  # fmt: skip
    path = f"/incidents/{iid}/supervisions/{order['id']}/reply"
    assert client.post(path, json={"reply": "x"}, headers=keys["beat"]).status_code == 403  # not a holder
    empty = client.post(path, json={}, headers=keys["worker"])
    assert empty.status_code == 422 and _detail(empty) == (["body", "reply"], "is required")
    answered = client.post(path, json={"reply": "已调解，双方签字"}, headers=keys["worker"])
    assert answered.status_code == 200 and answered.json()["replied_by"] == "worker"
    assert client.post(path, json={"reply": "again"}, headers=keys["dispatcher"]).status_code == 409
    missing = client.post(
        f"/incidents/{iid}/supervisions/999999/reply", json={"reply": "x"}, headers=keys["dispatcher"]
    )
    assert missing.status_code == 422 and _detail(missing)[0] == ["body", "supervision_id"]
    listed = client.get(f"/incidents/{iid}/supervisions", headers=keys["dispatcher"]).json()
    assert [(s["instruction"], s["reply"]) for s in listed] == [("限期化解", "已调解，双方签字")]
    # A summons naming one good and one unknown unit writes nothing.
    before = _events(connection, iid)
    mixed = client.post(f"/incidents/{iid}/summon", json={"org_units": ["330421-SZZX", "NOPE"], "report_by": FUTURE},
                        headers=keys["dispatcher"])  # fmt: skip
    assert mixed.status_code == 422 and "'NOPE'" in _detail(mixed)[1]
    assert _events(connection, iid) == before
    kinds = [a["kind"] for a in client.get(f"/incidents/{iid}/assignments", headers=keys["dispatcher"]).json()]
    assert kinds == ["dispatch"]
