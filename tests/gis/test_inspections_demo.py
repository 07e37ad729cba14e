"""The demo's year of inspections and hazards (demo.jiashan.inspections) on the mini county: G1's
lattice let out, a grid worker posted there all year, a second one for the first months only and
an auxiliary police officer from the middle of the year."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from demo.jiashan.inspections import add_inspections
from gis.core.vocab import COUNTY_TZ, HAZARD_PENDING_STATUSES
from gis.fieldwork import checklists, overdue
from gis.fieldwork.hazards import ACTIONS
from gis.fieldwork.inspections import risk_of
from gis.people import write
from tests.fieldwork_data import G1, seed

END = pd.Timestamp("2026-11-20T18:30:00+08:00")
FIRST = (END - pd.Timedelta(days=365)).tz_convert(COUNTY_TZ).date()
MID = FIRST + dt.timedelta(days=180)


def _post(conn: Connection, name: str, role: str, starts: dt.date, ends: dt.date | None = None) -> int:
    person = write.create_person(conn, "tests", name=name)["id"]
    body = {"role": role, "area_code": G1, "starts_on": starts.isoformat()}
    if ends is not None:
        body["ends_on"] = ends.isoformat()
    return int(write.add_posting(conn, "tests", person, body)["id"])


def _load(conn: Connection, seed_no: int = 5) -> dict[str, int]:
    field = seed(conn)
    _post(conn, "第二网格员", "grid_worker", dt.date(2021, 3, 1), MID)
    _post(conn, "网格辅警", "aux_police", MID + dt.timedelta(days=1))
    # Let out, with the registered defects that make items fail more often.
    conn.execute(
        sa.text(
            "UPDATE buildings SET is_rental = true, rooms = 2, tenants = 9, escape_window = 'blocked', "
            "ebike_charging = CASE WHEN right(code, 1) IN ('0', '2', '4') THEN 'fly_line' ELSE 'indoor' END, "
            "wiring = 'private' "
            "WHERE id = ANY(:ids)"
        ),
        {"ids": field.buildings},
    )
    return add_inspections(conn, FIRST, END, seed_no)


def _rows(conn: Connection, sql: str, **params: Any) -> list[sa.Row[Any]]:
    return list(conn.execute(sa.text(sql), params).all())


def test_demo_inspections_follow_staff_buildings_and_the_product_rules(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    counts = _load(connection)
    stored = _rows(
        connection,
        "SELECT (SELECT count(*) FROM inspections), (SELECT count(*) FROM hazards), "
        "(SELECT count(*) FROM hazard_events)",
    )[0]
    assert (counts["inspections"], counts["hazards"], counts["hazard_events"]) == tuple(stored)
    assert counts["inspections"] >= 36 * 3 and counts["hazards"] >= 20

    # Inspections: a year of them, each with the checklist's every item and a team of G1 held that day.
    checklist = checklists.find(connection, "rental_safety", 1)
    assert checklist is not None
    items = checklists.item_map(checklist)
    inspections = _rows(
        connection,
        "SELECT i.id, i.building_id, i.at, i.checklist_id, i.outcome, i.risk_level, i.failed_items, b.grid_code "
        "FROM inspections i JOIN buildings b ON b.id = i.building_id ORDER BY i.at",
    )
    assert {i.checklist_id for i in inspections} == {checklist["id"]}
    days = {i.at.astimezone(COUNTY_TZ).date() for i in inspections}
    assert min(days) < FIRST + dt.timedelta(days=95) and max(days) > END.date() - dt.timedelta(days=60)
    assert all(FIRST <= d <= END.date() for d in days) and max(i.at for i in inspections) < END
    results: dict[int, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(connection, "SELECT inspection_id, item_code, result FROM inspection_results"):
        results[r.inspection_id].append({"code": r.item_code, "result": r.result})
    team = _rows(
        connection,
        "SELECT t.inspection_id, p.role, p.layer, p.area_code, p.starts_on, p.ends_on "
        "FROM inspection_inspectors t JOIN postings p ON p.id = t.posting_id",
    )
    teams: dict[int, list[sa.Row[Any]]] = defaultdict(list)
    for member in team:
        teams[member.inspection_id].append(member)
    for i in inspections:
        assert sorted(r["code"] for r in results[i.id]) == sorted(items)
        failed = sum(r["result"] == "fail" for r in results[i.id])
        assert i.failed_items == failed and i.outcome == ("fail" if failed else "pass")
        assert i.risk_level == risk_of(results[i.id], items)
        day = i.at.astimezone(COUNTY_TZ).date()
        members = teams[i.id]
        for m in members:  # postings of the building's grid, held on the day
            assert (m.layer, m.area_code) == ("grid", i.grid_code)
            assert m.starts_on <= day and (m.ends_on is None or day <= m.ends_on)
        roles = sorted(m.role for m in members)
        assert roles == (["aux_police", "grid_worker"] if day > MID else ["grid_worker"])

    # Each building's risk level and next date are its latest inspection's, by the product's rule.
    interval = dict(_rows(connection, "SELECT risk_level, days FROM risk_intervals"))
    latest: dict[int, sa.Row[Any]] = {i.building_id: i for i in inspections}
    buildings = _rows(
        connection,
        "SELECT id, risk_level, last_inspected_at, last_inspection_id, next_inspection_on FROM buildings "
        "WHERE is_rental",
    )
    assert len(buildings) == 36
    for b in buildings:
        last = latest[b.id]
        assert (b.last_inspection_id, b.last_inspected_at) == (last.id, last.at)
        assert b.risk_level == risk_of(results[last.id], items)
        assert b.next_inspection_on == last.at.astimezone(COUNTY_TZ).date() + dt.timedelta(days=interval[b.risk_level])

    # Hazards: one per failed item not already open, with the item's terms, at the building.
    hazards = {
        h.id: h
        for h in _rows(
            connection,
            "SELECT h.*, i.at AS inspected_at, i.building_id AS inspected_building FROM hazards h "
            "JOIN inspections i ON i.id = h.inspection_id",
        )
    }
    assert len(hazards) == counts["hazards"]
    for h in hazards.values():
        item = items[h.item_code]
        assert (h.category, h.severity, h.responsible_party) == (
            item["hazard_category"],
            item["severity"],
            item["party"],
        )
        assert h.found_at == h.inspected_at and h.building_id == h.inspected_building and h.source == "inspection"
        assert h.grid_code == G1 and h.rectify_by > h.found_at
        assert h.status != "rectified" or h.rectified_at is not None
    opened = {(h.inspection_id, h.item_code) for h in hazards.values()}
    steps = _rows(
        connection,
        "SELECT e.action, e.inspection_id, h.item_code FROM hazard_events e JOIN hazards h ON h.id = e.hazard_id "
        "WHERE e.inspection_id IS NOT NULL AND e.action <> 'open'",
    )
    failed_again = {(s.inspection_id, s.item_code) for s in steps if s.action == "reinspect_fail"}
    passed_again = {(s.inspection_id, s.item_code) for s in steps if s.action == "reinspect_pass"}
    outcome = {(i, r["code"]): r["result"] for i, rs in results.items() for r in rs}
    fails = {key for key, result in outcome.items() if result == "fail"}
    assert fails == opened | failed_again and not opened & failed_again
    assert all(outcome[key] == "pass" for key in passed_again)

    # Every history is a path of the state machine, in time order, ending in the hazard's status.
    events: dict[int, list[sa.Row[Any]]] = defaultdict(list)
    for e in _rows(connection, "SELECT * FROM hazard_events ORDER BY hazard_id, id"):
        events[e.hazard_id].append(e)
    assert set(events) == set(hazards)
    seen_actions: set[str] = set()
    for hid, history in events.items():
        h = hazards[hid]
        first = history[0]
        assert (first.action, first.from_status, first.to_status, first.at) == ("open", None, "open", h.found_at)
        assert first.deadline == h.found_at + dt.timedelta(days=items[h.item_code]["rectify_days"])
        for before, e in zip(history, history[1:], strict=False):
            assert e.at >= before.at and e.from_status == before.to_status != "rectified"
            seen_actions.add(e.action)
            if e.action == "overdue":
                assert e.actor == overdue.SYSTEM_ACTOR and e.to_status == "overdue"
                assert e.from_status in (*HAZARD_PENDING_STATUSES, "overdue")
            else:
                verb = "reinspect" if e.action.startswith("reinspect_") else e.action
                froms, target = ACTIONS[verb]
                assert e.from_status in froms, (hid, e.action, e.from_status)
                expected = target or ("rectified" if e.action == "reinspect_pass" else "rectifying")
                assert e.to_status == expected
            if e.deadline is not None and e.action != "overdue":
                assert e.deadline > e.at > h.found_at  # a new deadline lies after the step and the finding
        assert history[-1].to_status == h.status and history[-1].at == h.updated_at
        assert history[-1].at < END
    assert {"notify", "start", "submit", "reinspect_pass", "overdue"} <= seen_actions

    # At the reference instant nothing is left for the deadline job: the states are current.
    assert overdue.sweep(connection, END.to_pydatetime()) == 0
    escalated = [h for h in hazards.values() if h.escalation_level != "grid"]
    assert escalated and all(h.overdue_at is not None and h.escalated_at is not None for h in escalated)
    for h in hazards.values():  # the columns agree with the history
        if h.status in HAZARD_PENDING_STATUSES:
            assert h.rectify_by >= END
        if h.status == "overdue":
            assert h.escalation_due_at is None or h.escalation_due_at >= END


def test_demo_inspections_are_deterministic(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    def run() -> list[tuple[Any, ...]]:
        with connection.begin_nested() as sp:
            _load(connection, seed_no=9)
            rows = _rows(
                connection,
                "SELECT h.item_code, h.status, h.found_at, h.rectify_by, h.escalation_level, "
                "(SELECT string_agg(e.action, ',' ORDER BY e.id) FROM hazard_events e WHERE e.hazard_id = h.id) "
                "FROM hazards h ORDER BY h.found_at, h.item_code",
            )
            sp.rollback()
        return [tuple(r) for r in rows]

    first = run()
    assert first and first == run()
