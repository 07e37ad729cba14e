"""``inspections.record`` of a well-formed inspection in ONE statement and one round trip
(``inspectsql.ONE_SQL``), for the API's fast path (api.fieldwork_fastpath) under autocommit.

``record`` takes four round trips (BEGIN, the lock, the write, COMMIT) plus one per earlier hazard
step; here the values are checked with the same functions first, the checklist version comes
from a per-process cache (versions never change; the statement checks that the one it resolves
is still the cached one), and the statement locks, checks and writes everything or nothing.
``record_one`` answers None whenever ``record`` might answer otherwise (an error, a resend for
another building, a changed checklist): nothing is stored then, and the caller hands the request
to the route, which gives the documented answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import checklists, hazards, inspections, inspectsql
from gis.fieldwork.common import instant, position, text
from gis.incidents.errors import IncidentInputError
from gis.people.scope import Scope
from gis.spatial.areas import Conn

# The body's shape as ``api.schemas.fieldwork.InspectionIn`` and ``ResultIn`` accept it without
# converting anything (text limits before stripping, as pydantic counts them): field -> the types
# taken and the longest text. Any other body (a number as text, a float id, ...) is the route's.
_NONE = type(None)
_FIELDS: dict[str, tuple[tuple[type, ...], int | None]] = {
    "inspectors": ((list,), None),
    "results": ((list,), None),
    "checklist_kind": ((str, _NONE), None),
    "checklist_version": ((int, _NONE), None),
    "at": ((str, _NONE), 40),
    "lon": ((float, int, _NONE), None),
    "lat": ((float, int, _NONE), None),
    "crs": ((str,), None),
    "room": ((str, _NONE), 40),
    "notes": ((str, _NONE), 4000),
    "client_id": ((str, _NONE), 64),
}
_RESULT_FIELDS: dict[str, tuple[tuple[type, ...], int | None]] = {
    "code": ((str,), 40),
    "result": ((str,), None),
    "note": ((str, _NONE), 2000),
    "deadline": ((str, _NONE), 40),
    "responsible_party": ((str, _NONE), None),
}
_MAX_INSPECTORS, _MAX_RESULTS = 10, 200  # InspectionIn's list limits
# A re-inspection's starting statuses, as hazards.apply allows them.
_FROMS = ", ".join(f"'{s}'" for s in hazards.ACTIONS["reinspect"][0])


def _fits(obj: Any, fields: Mapping[str, tuple[tuple[type, ...], int | None]]) -> bool:
    if type(obj) is not dict:
        return False
    for key, value in obj.items():
        spec = fields.get(key)
        # ``type(...) in``: a bool is not an int here (pydantic converts it; the route answers it).
        if spec is None or type(value) not in spec[0] or (spec[1] is not None and len(value) > spec[1]):
            return False
    return True


def well_formed(payload: Any) -> bool:
    """Whether ``InspectionIn`` takes ``payload`` as it is (so that its model_dump is the body
    with None for the absent fields): only then may ``record_one`` store it."""
    if not _fits(payload, _FIELDS) or "inspectors" not in payload or "results" not in payload:
        return False
    team, results = payload["inspectors"], payload["results"]
    if len(team) > _MAX_INSPECTORS or len(results) > _MAX_RESULTS:
        return False
    if any(type(p) is not int for p in team):
        return False
    return all(_fits(r, _RESULT_FIELDS) and "code" in r and "result" in r for r in results)


# (kind, version or None for the latest) -> checklist id. A version never changes; the latest of
# a kind can, and the statement then refuses the cached id and the entry is dropped.
_versions: dict[tuple[str, int | None], int] = {}
_versions_lock = threading.Lock()


def _checklist(conn: Conn, kind: str, version: int | None) -> dict[str, Any] | None:
    found = _versions.get((kind, version))
    if found is not None:
        return checklists.by_id(conn, found)
    checklist = checklists.find(conn, kind, version)  # once per process and kind
    if checklist is not None:
        with _versions_lock:
            _versions[(kind, version)] = checklist["id"]
    return checklist


@functools.lru_cache(maxsize=64)
def _one_sql(in_scope: str) -> sa.TextClause:
    """The statement for a scope's condition (a handful of shapes), built once."""
    return sa.text(inspectsql.ONE_SQL.replace("IN_SCOPE", in_scope).replace("FROMS", _FROMS))


def _execute_prepared(conn: Conn, sql: sa.TextClause, params: dict[str, Any]) -> sa.Row[Any]:
    """Run ``sql`` as a statement prepared on the server (as ``gis.incidents.intake._insert``):
    planning this long statement would cost more database CPU than running it, and its plan does
    not depend on the values (every table is reached by its key or an index on the building)."""
    connection = conn.connection() if isinstance(conn, Session) else conn
    driver = connection.connection.driver_connection
    assert driver is not None  # a live, checked-out connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = 0
    try:
        return connection.execute(sql, params).one()
    finally:
        driver.prepare_threshold = threshold


def record_one(
    conn: Conn, building_id: int, payload: Any, actor: str, scope: Scope, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """``inspections.record`` of a ``well_formed`` body in one statement: its answer, the stored
    inspection of a resend (``replayed``), or None with nothing stored when ``record`` must decide
    (a refused value, a missing or out-of-scope building, a posting not held, a changed checklist)."""
    if not well_formed(payload):
        return None
    now = now or dt.datetime.now(dt.UTC)
    try:
        at = instant(payload, "at", now) or now
        lonlat = position(payload)
        room = text(payload, "room", 40)
        notes = text(payload, "notes", 4000)
        client_id = text(payload, "client_id", 64)
        team = inspections._team(payload["inspectors"], True)
        kind, version = checklists.requested(payload)
        checklist = _checklist(conn, kind, version)
        if checklist is None:
            return None
        items = checklists.item_map(checklist)
        results = inspections._results(payload["results"], items, checklist, at)
    except IncidentInputError:
        return None
    failed = [r for r in results if r["result"] == "fail"]
    checked = [r for r in results if r["result"] != "na"]  # the items that re-inspect earlier hazards
    risk = inspections.risk_of(results, items)
    lon, lat = lonlat if lonlat is not None else (None, None)
    opening = inspections._opening(failed, items, at)
    opening["open_codes"] = opening.pop("codes")
    in_scope, scope_params = scope.where("b")
    params = {
        **scope_params, **opening, "building": building_id, "room": room, "checklist": checklist["id"], "at": at,
        "lon": lon, "lat": lat, "notes": notes, "outcome": "fail" if failed else "pass", "risk": risk,
        "failed": len(failed), "actor": actor, "postings": team, "day": at.astimezone(COUNTY_TZ).date(),
        "kind": kind, "version": version, "client_id": client_id, "codes": [r["code"] for r in results],
        "results": [r["result"] for r in results], "notes_each": [r["note"] for r in results],
        "rcodes": [r["code"] for r in checked], "rresults": [r["result"] for r in checked],
        # A failed item's new deadline for its earlier hazard, as ``record`` passes it to hazards.apply.
        "rdeadlines": [
            None if r["result"] == "pass" else r["deadline"] or at + dt.timedelta(days=items[r["code"]]["rectify_days"])
            for r in checked
        ],
    }  # fmt: skip
    row = _execute_prepared(conn, _one_sql(in_scope), params)
    if row.checklist != checklist["id"]:
        with _versions_lock:
            _versions.pop((kind, version), None)  # a newer version: read again by the next request
    if not row.ok:
        return None
    if row.id is None:  # the client id is stored: a resend
        try:
            return inspections.replay(conn, str(client_id), building_id)
        except IncidentInputError:
            return None
    return {
        "id": row.id,
        "building_id": building_id,
        "at": at,
        "checklist_kind": checklist["kind"],
        "checklist_version": checklist["version"],
        "outcome": "fail" if failed else "pass",
        "risk_level": risk,
        "next_inspection_on": row.next_inspection_on,
        "inspectors": team,
        "results": [{"code": r["code"], "result": r["result"], "note": r["note"]} for r in results],
        "hazards_opened": list(row.opened),
        "hazards_rectified": list(row.rectified),
        "hazards_reopened": list(row.reopened),
        "replayed": False,
    }
