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
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from gis.core.vocab import COUNTY_TZ, HAZARD_PARTIES, INSPECTION_RESULTS
from gis.fieldwork import checklists, hazards, inspectsql
from gis.fieldwork.common import FieldworkInputError, NotFound, as_aware, choice, instant, position, text
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

MAX_INSPECTORS = 10


def _team(raw: Any, required: bool) -> list[int]:
    """The posting ids of the team, as given (whether each was held that day is read with the lock)."""
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


@functools.lru_cache(maxsize=64)
def _lock_sql(in_scope: str) -> sa.TextClause:
    """The lock statement for a scope's condition (a handful of shapes: the codes are parameters),
    built once: making a long TextClause costs more than running the statement's Python side."""
    return sa.text(inspectsql.LOCK_SQL.format(in_scope=in_scope))


def _lock(
    conn: Conn, building_id: Any, data: Mapping[str, Any], codes: list[str], at: dt.datetime, scope: Scope
) -> sa.Row[Any]:
    """One round trip: the building (locked; NotFound outside the scope), the postings held that
    day, its unrectified hazards of these item codes (locked) and the checklist version's id."""
    if isinstance(building_id, bool) or not isinstance(building_id, int) or not 1 <= building_id < 2**63:
        raise FieldworkInputError("building_id", f"{building_id!r} is not a building id")
    kind, version = checklists.requested(data)
    in_scope, params = scope.where("b")
    team = data["inspectors"]
    row = conn.execute(
        _lock_sql(in_scope),
        {**params, "building": building_id, "codes": codes, "postings": team, "day": at.astimezone(COUNTY_TZ).date(),
         "kind": kind, "version": version},
    ).one()  # fmt: skip
    if row.building is None:
        raise NotFound("building", building_id)
    if row.checklist is None:
        raise checklists.missing(kind, version)
    return row


def _opening(new: list[dict[str, Any]], items: Mapping[str, Mapping[str, Any]], at: dt.datetime) -> dict[str, Any]:
    """The parameters of the hazards the failed items ``new`` open (``inspectsql.OPEN_SQL``)."""
    pairs = [(items[e["code"]], e) for e in new]
    return {
        "categories": [item["hazard_category"] for item, _ in pairs],
        "severities": [item["severity"] for item, _ in pairs],
        "descriptions": [item["text"] + (f"：{e['note']}" if e["note"] else "") for item, e in pairs],
        "deadlines": [e["deadline"] or at + dt.timedelta(days=item["rectify_days"]) for item, e in pairs],
        "parties": [e["party"] or item["party"] for item, e in pairs],
        "codes": [e["code"] for e in new],
    }


def _check_team(team: list[int], held: Sequence[int], at: dt.datetime) -> None:
    day = at.astimezone(COUNTY_TZ).date()
    for n, value in enumerate(team):
        if value not in held:
            raise FieldworkInputError(f"inspectors[{n}]", f"posting {value} does not exist or was not held on {day}")


def _codes(raw: Any) -> list[str]:
    """The item codes a results list names (checked later against the checklist)."""
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise FieldworkInputError("results", "give each checked item's result (at least one)")
    return [e["code"] for e in raw if isinstance(e, Mapping) and isinstance(e.get("code"), str)]


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
    lonlat = position(data)
    room = text(data, "room", 40)
    notes = text(data, "notes", 4000)
    client_id = text(data, "client_id", 64)
    team = _team(data.get("inspectors"), team_required)
    locked = _lock(conn, building_id, {**data, "inspectors": team}, _codes(data.get("results")), at, scope)
    checklist = checklists.by_id(conn, locked.checklist)  # a version is read once per process
    items = checklists.item_map(checklist)
    results = _results(data.get("results"), items, checklist, at)
    _check_team(team, locked.held, at)
    by_code = {r["code"]: r for r in results if r["result"] != "na"}
    earlier = []
    for hazard in locked.hazards:
        if hazard["item_code"] in by_code:
            earlier.append(
                {**hazard, "found_at": as_aware(hazard["found_at"]), "rectify_by": as_aware(hazard["rectify_by"])}
            )

    failed = [r for r in results if r["result"] == "fail"]
    risk = risk_of(results, items)
    lon, lat = lonlat if lonlat is not None else (None, None)
    params = {"building": building_id, "room": room, "checklist": checklist["id"], "at": at, "lon": lon, "lat": lat,
              "notes": notes, "outcome": "fail" if failed else "pass", "risk": risk, "failed": len(failed),
              "actor": actor, "postings": team, "codes": [r["code"] for r in results],
              "results": [r["result"] for r in results], "notes_each": [r["note"] for r in results],
              "client_id": client_id}  # fmt: skip
    # The common case, no earlier hazard of these items to re-inspect first: the failed items'
    # hazards are opened by the statement that writes the inspection (one round trip less).
    open_now = bool(failed) and not any(h["found_at"] < at for h in earlier)
    if open_now:
        opening = _opening(failed, items, at)
        opening["open_codes"] = opening.pop("codes")  # ``codes`` are the results' codes here
        params.update(opening)
    written = conn.execute(inspectsql.WRITE_OPEN_SQL if open_now else inspectsql.WRITE_SQL, params).one()
    if written.id is None:  # the client id is stored: this is a resend
        return replay(conn, str(client_id), building_id)
    inspection_id, next_on = written.id, written.next_inspection_on

    # Re-inspection of the hazards earlier inspections opened for these items.
    rectified: list[int] = []
    reopened: list[int] = []
    handled: set[str] = set()
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

    new = [entry for entry in failed if entry["code"] not in handled]
    opened: list[int] = [int(h) for h in written.opened] if open_now else []
    if new and not open_now:
        rows = conn.execute(
            inspectsql.OPEN_SQL,
            {"at": at, "building": building_id, "lon": lon, "lat": lat, "inspection": inspection_id, "actor": actor,
             **_opening(new, items, at)},
        ).all()  # fmt: skip
        opened = [int(r.id) for r in rows]
    return answer(
        inspection_id, building_id, at, checklist, failed, risk, next_on, team, results, (opened, rectified, reopened)
    )


def answer(
    inspection_id: int,
    building_id: int,
    at: Any,
    checklist: dict[str, Any],
    failed: list[dict[str, Any]],
    risk: Any,
    next_on: Any,
    team: Any,
    results: list[dict[str, Any]],
    hazards: tuple[list[int], list[int], list[int]],
) -> dict[str, Any]:
    """A recorded inspection as ``POST /buildings/{id}/inspections`` answers it (the route and the
    fast path, gis.fieldwork.inspectfast); ``failed``: the failed results; ``hazards``: (opened,
    rectified, reopened) ids."""
    opened, rectified, reopened = hazards
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
        "replayed": False,
    }


def replay(conn: Conn, client_id: str, building_id: int) -> dict[str, Any]:
    """The stored inspection of ``client_id`` as ``record`` first answered it (``replayed`` True).
    The same client id for another building is a mistake of the client, answered 422."""
    row = conn.execute(inspectsql.REPLAY_SQL, {"client_id": client_id}).one()
    if row.building_id != building_id:
        raise FieldworkInputError(
            "client_id", f"{client_id!r} names inspection {row.id} of building {row.building_id}, not {building_id}"
        )
    return {
        "id": row.id,
        "building_id": row.building_id,
        "at": row.at,
        "checklist_kind": row.kind,
        "checklist_version": row.version,
        "outcome": row.outcome,
        "risk_level": row.risk_level,
        "next_inspection_on": row.next_inspection_on,
        "inspectors": list(row.team),
        "results": row.results,
        "hazards_opened": list(row.opened),
        "hazards_rectified": list(row.rectified),
        "hazards_reopened": list(row.reopened),
        "replayed": True,
    }
