"""``inspections.record`` of a well-formed inspection in one function call and one round trip
(``inspectsql.ONE_SQL``, migration 0035), for the API's fast path (api.fieldwork_fastpath) under
autocommit.

``record`` takes four round trips (BEGIN, the lock, the write, COMMIT) plus several per earlier
hazard re-inspected; here the values are checked with the same functions first, the checklist
version comes from a per-process cache (versions never change; the function checks that the one
it resolves is still the cached one), and the function locks, checks and writes all or nothing.
``record_one`` answers None whenever ``record`` might answer otherwise (an error, a resend for
another building, a changed checklist): nothing is stored then, and the caller hands the request
to the route, which gives the documented answer.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from gis.core.prepared import execute_prepared
from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import checklists, inspections, inspectsql
from gis.fieldwork.common import instant, position, text
from gis.incidents.errors import IncidentInputError
from gis.people.scope import SCOPE_LAYERS, Scope, code_layer
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
# The function's argument of each scope layer's codes.
_LAYER_ARGS = {"town": "towns", "village": "villages", "grid": "grids", "micro_grid": "micro_grids",
               "station": "stations", "beat": "beats"}  # fmt: skip


def _fits(obj: Any, fields: Mapping[str, tuple[tuple[type, ...], int | None]]) -> bool:
    if type(obj) is not dict:
        return False
    for key, value in obj.items():
        spec = fields.get(key)
        # ``type(...) in``: a bool is not an int here (pydantic converts it; the route answers it).
        if spec is None or type(value) not in spec[0]:
            return False
        if spec[1] is not None and value is not None and len(value) > spec[1]:
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


def _scope_args(scope: Scope) -> dict[str, Any] | None:
    """The scope as the function takes it: the whole county, or its codes by layer (the rows
    ``Scope.where`` keeps: a code's layer column equal to it). None for a scope naming a county
    (``county_code``, migration 0032), which the function does not take: ``record`` decides."""
    by_layer: dict[str, list[str]] = {layer: [] for layer in _LAYER_ARGS}
    for code in scope.codes:
        layer = code_layer(code)
        if layer in by_layer:
            by_layer[layer].append(code)
        elif layer in SCOPE_LAYERS:
            return None
    return {"whole": scope.whole, **{_LAYER_ARGS[layer]: codes for layer, codes in by_layer.items()}}


def record_one(
    conn: Conn, building_id: int, payload: Any, actor: str, scope: Scope, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """``inspections.record`` of a ``well_formed`` body in one call: its answer, the stored
    inspection of a resend (``replayed``), or None with nothing stored when ``record`` must decide
    (a refused value, a missing or out-of-scope building, a posting not held, ...)."""
    if not well_formed(payload):
        return None
    scope_args = _scope_args(scope)
    if scope_args is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    try:
        at = instant(payload, "at", now) or now
        lonlat = position(payload)
        fields = {
            "building": building_id, "at": at, "room": text(payload, "room", 40),
            "notes": text(payload, "notes", 4000), "client_id": text(payload, "client_id", 64),
            "postings": inspections._team(payload["inspectors"], True), "actor": actor,
            "day": at.astimezone(COUNTY_TZ).date(), "lon": lonlat[0] if lonlat else None,
            "lat": lonlat[1] if lonlat else None, **scope_args,
        }  # fmt: skip
        kind, version = checklists.requested(payload)
        # A new version of the kind since it was cached: read the latest and try once more.
        for _attempt in range(2):
            checklist = _checklist(conn, kind, version)
            if checklist is None:
                return None
            answer = _store(conn, payload, fields, checklist, kind, version)
            if answer is not None:
                return answer if answer else None
        return None
    except IncidentInputError:
        return None


def _store(
    conn: Conn, payload: Any, fields: dict[str, Any], checklist: dict[str, Any], kind: str, version: int | None
) -> dict[str, Any] | None:
    """The answer; an empty dict when nothing is stored and ``record`` must decide; None when the
    checklist version resolved now is not ``checklist`` (dropped from the cache, nothing stored)."""
    at = fields["at"]
    items = checklists.item_map(checklist)
    results = inspections._results(payload["results"], items, checklist, at)
    failed = [r for r in results if r["result"] == "fail"]
    checked = [r for r in results if r["result"] != "na"]  # the items that re-inspect earlier hazards
    risk = inspections.risk_of(results, items)
    opening = inspections._opening(failed, items, at)
    opening["open_codes"] = opening.pop("codes")
    params = {
        **fields, **opening, "checklist": checklist["id"], "kind": kind, "version": version,
        "outcome": "fail" if failed else "pass", "risk": risk, "failed": len(failed),
        "codes": [r["code"] for r in results], "results": [r["result"] for r in results],
        "notes_each": [r["note"] for r in results],
        "rcodes": [r["code"] for r in checked], "rresults": [r["result"] for r in checked],
        # A failed item's new deadline for its earlier hazard, as ``record`` passes it to hazards.apply.
        "rdeadlines": [
            None if r["result"] == "pass" else r["deadline"] or at + dt.timedelta(days=items[r["code"]]["rectify_days"])
            for r in checked
        ],
    }  # fmt: skip
    connection = conn.connection() if isinstance(conn, Session) else conn
    row: Any = execute_prepared(connection, inspectsql.ONE, params).one()
    if row.checklist != checklist["id"]:
        with _versions_lock:
            _versions.pop((kind, version), None)
        return None if row.checklist is not None else {}
    if not row.ok:
        return {}
    building_id = fields["building"]
    if row.id is None:  # the client id is stored: a resend
        try:
            return inspections.replay(conn, str(fields["client_id"]), building_id)
        except IncidentInputError:
            return {}
    return inspections.answer(
        row.id,
        building_id,
        at,
        checklist,
        failed,
        risk,
        row.next_inspection_on,
        fields["postings"],
        results,
        (list(row.opened), list(row.rectified), list(row.reopened)),
    )
