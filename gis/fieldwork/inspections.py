"""Inspections (检查): ``POST /buildings/{id}/inspections``.

An inspection records the building (or one room of it), the joint team (postings: a grid worker
and an auxiliary police officer, say), the time, the position, the checklist version and each
item's result (pass, fail, not applicable). In one transaction:

* every value is checked first (an item not in that checklist version, a posting that does not
  exist or was not held that day, a deadline before the finding: 422 naming the field; a building
  missing or outside the caller's scope: 404), so a refused inspection writes nothing;
* the building's open hazards from earlier inspections are re-inspected by the same items: a
  pass rectifies the hazard, a fail sends it back to rectifying with a new deadline;
* every other failed item opens a hazard with the item's severity, category, responsible party and
  deadline (the inspection time plus the item's days, or the result's own ``deadline``);
* the building's risk level (high: a high-severity item failed; medium: another item failed; low:
  none) and next-inspection date (``risk_intervals``) follow the inspection, if it is the latest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import COUNTY_TZ, HAZARD_PARTIES, INSPECTION_RESULTS
from gis.fieldwork import checklists, hazards
from gis.fieldwork.buildings import lock_building, settle
from gis.fieldwork.common import FieldworkInputError, choice, instant, position, text
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

MAX_INSPECTORS = 10


def _inspectors(conn: Conn, raw: Any, at: dt.datetime, required: bool = True) -> list[int]:
    """The postings of the team, each existing and held on the inspection's day (county time)."""
    if not required and not raw:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise FieldworkInputError("inspectors", "give the posting ids of the inspectors (at least one)")
    if len(raw) > MAX_INSPECTORS:
        raise FieldworkInputError("inspectors", f"{len(raw)} inspectors; at most {MAX_INSPECTORS}")
    ids: list[int] = []
    for n, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
            raise FieldworkInputError(f"inspectors[{n}]", f"{value!r} is not a posting id")
        if value in ids:
            raise FieldworkInputError(f"inspectors[{n}]", f"posting {value} appears twice")
        ids.append(value)
    day = at.astimezone(COUNTY_TZ).date()
    held = set(
        conn.execute(
            sa.text(
                "SELECT id FROM postings WHERE id = ANY(:ids) AND starts_on <= :day "
                "AND (ends_on IS NULL OR ends_on >= :day)"
            ),
            {"ids": ids, "day": day},
        ).scalars()
    )
    for n, value in enumerate(ids):
        if value not in held:
            raise FieldworkInputError(f"inspectors[{n}]", f"posting {value} does not exist or was not held on {day}")
    return ids


def _results(
    raw: Any, items: Mapping[str, Mapping[str, Any]], checklist: Mapping[str, Any], at: dt.datetime
) -> list[dict[str, Any]]:
    label = f"{checklist['kind']} v{checklist['version']}"
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise FieldworkInputError("results", "give each checked item's result (at least one)")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, entry in enumerate(raw):
        where = f"results[{n}]"
        if not isinstance(entry, Mapping):
            raise FieldworkInputError(where, "must be an object with code and result")
        code = entry.get("code")
        if not isinstance(code, str) or code not in items:
            raise FieldworkInputError(f"{where}.code", f"{str(code)[:60]!r} is not an item of checklist {label}")
        if code in seen:
            raise FieldworkInputError(f"{where}.code", f"{code!r} appears twice")
        seen.add(code)
        result = choice(entry, "result", INSPECTION_RESULTS, label=f"{where}.result")
        if result is None:
            raise FieldworkInputError(f"{where}.result", f"missing; one of {', '.join(INSPECTION_RESULTS)}")
        deadline = instant(entry, "deadline", at, label=f"{where}.deadline", future_ok=True)
        if deadline is not None:
            if result != "fail":
                raise FieldworkInputError(f"{where}.deadline", "only a failed item has a rectification deadline")
            hazards.check_deadline(f"{where}.deadline", deadline, at)
        party = choice(entry, "responsible_party", HAZARD_PARTIES, label=f"{where}.responsible_party")
        note = text(entry, "note", 2000, label=f"{where}.note")
        out.append({"code": code, "result": result, "deadline": deadline, "party": party, "note": note})
    return out


def risk_of(results: Sequence[Mapping[str, Any]], items: Mapping[str, Mapping[str, Any]]) -> str:
    failed = [items[r["code"]]["severity"] for r in results if r["result"] == "fail"]
    if "high" in failed:
        return "high"
    return "medium" if failed else "low"


_INSERT = sa.text(
    """INSERT INTO inspections (building_id, room, checklist_id, at, geom, notes, outcome, risk_level,
                                failed_items, actor)
       VALUES (:building, :room, :checklist, :at,
               ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326),
               :notes, :outcome, :risk, :failed, :actor)
       RETURNING id"""
)
_TEAM = sa.text(
    "INSERT INTO inspection_inspectors (inspection_id, posting_id) SELECT :id, unnest(CAST(:postings AS bigint[]))"
)
_RESULTS = sa.text(
    "INSERT INTO inspection_results (inspection_id, item_code, result, note) "
    "SELECT :id, * FROM unnest(CAST(:codes AS text[]), CAST(:results AS text[]), CAST(:notes AS text[]))"
)
_OPEN_OF_BUILDING = sa.text(
    "SELECT id, status, severity, found_at, rectify_by, escalation_level, inspection_id, item_code "
    "FROM hazards WHERE building_id = :b AND status <> 'rectified' AND item_code = ANY(:codes) "
    "ORDER BY id FOR UPDATE"
)


def record(
    conn: Conn,
    building_id: int,
    data: Mapping[str, Any],
    actor: str,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
    *,
    team_required: bool = True,
) -> dict[str, Any]:
    """Store an inspection of ``building_id`` and everything it implies (module docstring).
    ``team_required`` False: past inspections imported from files may not name their team."""
    now = now or dt.datetime.now(dt.UTC)
    at = instant(data, "at", now) or now
    checklist = checklists.resolve(conn, data)
    items = checklists.item_map(checklist)
    results = _results(data.get("results"), items, checklist, at)
    lonlat = position(data)
    room = text(data, "room", 40)
    notes = text(data, "notes", 4000)
    team = _inspectors(conn, data.get("inspectors"), at, team_required)
    lock_building(conn, building_id, scope)

    failed = [r for r in results if r["result"] == "fail"]
    risk = risk_of(results, items)
    lon, lat = lonlat if lonlat is not None else (None, None)
    inspection_id = conn.execute(
        _INSERT,
        {"building": building_id, "room": room, "checklist": checklist["id"], "at": at, "lon": lon, "lat": lat,
         "notes": notes, "outcome": "fail" if failed else "pass", "risk": risk, "failed": len(failed),
         "actor": actor},
    ).scalar_one()  # fmt: skip
    conn.execute(_TEAM, {"id": inspection_id, "postings": team})
    conn.execute(
        _RESULTS,
        {"id": inspection_id, "codes": [r["code"] for r in results], "results": [r["result"] for r in results],
         "notes": [r["note"] for r in results]},
    )  # fmt: skip

    # Re-inspection of the hazards earlier inspections opened for these items.
    by_code = {r["code"]: r for r in results if r["result"] != "na"}
    rectified: list[int] = []
    reopened: list[int] = []
    handled: set[str] = set()
    earlier = conn.execute(_OPEN_OF_BUILDING, {"b": building_id, "codes": list(by_code)}).mappings().all()
    for hazard in earlier:
        if hazard["found_at"] >= at:  # found after this inspection's time: not its business
            continue
        entry = by_code[hazard["item_code"]]
        deadline = entry["deadline"] or at + dt.timedelta(days=items[entry["code"]]["rectify_days"])
        failed_again = entry["result"] == "fail"
        hazards.apply(conn, hazard, "reinspect", actor, at, result=entry["result"],
                      deadline=deadline if failed_again else None, inspection_id=inspection_id)  # fmt: skip
        (rectified if entry["result"] == "pass" else reopened).append(hazard["id"])
        handled.add(hazard["item_code"])

    opened: list[int] = []
    for entry in failed:
        if entry["code"] in handled:
            continue
        item = items[entry["code"]]
        deadline = entry["deadline"] or at + dt.timedelta(days=item["rectify_days"])
        row = hazards.open_hazard(
            conn, category=item["hazard_category"], severity=item["severity"], party=entry["party"] or item["party"],
            found_at=at, deadline=deadline, actor=actor, source="inspection", building_id=building_id,
            lonlat=lonlat, description=item["text"] + (f"：{entry['note']}" if entry["note"] else ""),
            inspection_id=inspection_id, item_code=entry["code"],
        )  # fmt: skip
        opened.append(int(row.id))

    next_on = settle(conn, building_id, inspection_id, at, risk)
    audit.record(conn, actor, "inspection.create", f"inspection/{inspection_id}", building_id=building_id,
                 failed=len(failed), opened=opened, rectified=rectified)  # fmt: skip
    return {
        "id": inspection_id,
        "building_id": building_id,
        "at": at,
        "checklist_kind": checklist["kind"],
        "checklist_version": checklist["version"],
        "outcome": "fail" if failed else "pass",
        "risk_level": risk,
        "next_inspection_on": next_on,
        "inspectors": team,
        "results": [{"code": r["code"], "result": r["result"], "note": r["note"]} for r in results],
        "hazards_opened": opened,
        "hazards_rectified": rectified,
        "hazards_reopened": reopened,
    }
