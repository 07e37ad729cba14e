"""The hazard rectification loop (隐患整改闭环).

A hazard is found by an inspection (a failed checklist item, gis.fieldwork.inspections) or reported
directly (``report``). Its states: open → notified (the rectification order served on the
responsible party) → rectifying → submitted (the party says it is done) → re-inspected: pass →
rectified, fail → rectifying again with a new deadline. The deadline job (gis.fieldwork.overdue)
marks a hazard overdue when its deadline passes, and escalates it like an incident. Every step
writes ``hazard_events`` (who, when, from, to, the deadline, why) and the audit log; every
deadline set schedules its job in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import HAZARD_CATEGORIES, HAZARD_PARTIES, HAZARD_SEVERITIES
from gis.fieldwork import overdue
from gis.fieldwork.common import FieldworkInputError, NotFound, choice, instant, position, text
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

# Days to rectify a hazard that no checklist item sets a period for (direct reports, re-inspection
# failures of such hazards), by severity.
DEFAULT_DAYS = {"high": 3, "medium": 7, "low": 15}

# verb -> (the statuses it starts from, the status it leads to; None: decided by the result)
ACTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "notify": (("open",), "notified"),
    "start": (("open", "notified", "overdue"), "rectifying"),
    "submit": (("open", "notified", "rectifying", "overdue"), "submitted"),
    "reinspect": (("open", "notified", "rectifying", "submitted", "overdue"), None),
}
# A status named as the action means the verb that leads there.
_BY_STATUS = {"notified": "notify", "rectifying": "start", "submitted": "submit", "rectified": "reinspect"}


class IllegalHazardTransition(RuntimeError):
    """The hazard cannot take that step from where it is; ``allowed`` lists the verbs it can take."""

    def __init__(self, hazard_id: int, current: str, requested: str) -> None:
        allowed = tuple(verb for verb, (froms, _) in ACTIONS.items() if current in froms)
        where = f"allowed: {', '.join(allowed)}" if allowed else f"{current!r} is final"
        super().__init__(f"hazard {hazard_id}: cannot {requested} from {current!r}; {where}")
        self.current = current
        self.requested = requested
        self.allowed = allowed


def event(
    conn: Conn,
    hazard_id: int,
    at: dt.datetime,
    actor: str,
    action: str,
    frm: str | None,
    to: str | None,
    *,
    deadline: dt.datetime | None = None,
    inspection_id: int | None = None,
    note: str | None = None,
) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO hazard_events (hazard_id, at, actor, action, from_status, to_status, deadline, "
            "inspection_id, note) VALUES (:h, :at, :actor, :action, :frm, :to, :deadline, :insp, :note)"
        ),
        {"h": hazard_id, "at": at, "actor": actor, "action": action, "frm": frm, "to": to,
         "deadline": deadline, "insp": inspection_id, "note": note},
    )  # fmt: skip


_INSERT = sa.text(
    """
    INSERT INTO hazards (category, severity, status, description, found_at, rectify_by, building_id, geom,
                         responsible_party, source, inspection_id, item_code, reported_by, updated_at)
    SELECT :category, :severity, 'open', :description, :found_at, :deadline, :building_id,
           coalesce(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326),
                    (SELECT geom FROM buildings WHERE id = :building_id)),
           :party, :source, :inspection_id, :item_code, :actor, :found_at
    RETURNING id, town_code, village_code, grid_code, micro_grid_code, station_code, beat_code
    """
)


def open_hazard(
    conn: Conn,
    *,
    category: str,
    severity: str,
    party: str | None,
    found_at: dt.datetime,
    deadline: dt.datetime,
    actor: str,
    source: str,
    building_id: int | None = None,
    lonlat: tuple[float, float] | None = None,
    description: str | None = None,
    inspection_id: int | None = None,
    item_code: str | None = None,
) -> sa.Row[Any]:
    """Store an open hazard with its first event, and schedule its deadline job; returns the row's
    id and assignment. Callers have checked the values (the deadline after the finding)."""
    lon, lat = lonlat if lonlat is not None else (None, None)
    row = conn.execute(
        _INSERT,
        {"category": category, "severity": severity, "description": description, "found_at": found_at,
         "deadline": deadline, "building_id": building_id, "lon": lon, "lat": lat, "party": party,
         "source": source, "inspection_id": inspection_id, "item_code": item_code, "actor": actor},
    ).one()  # fmt: skip
    event(conn, row.id, found_at, actor, "open", None, "open", deadline=deadline, inspection_id=inspection_id)
    overdue.schedule(conn, row.id, deadline, "grid")
    return row


def check_deadline(field: str, deadline: dt.datetime, found_at: dt.datetime, now: dt.datetime | None = None) -> None:
    """A deadline must come after the finding (and, when set now, after now)."""
    if deadline <= found_at:
        raise FieldworkInputError(field, f"{deadline.isoformat()} is not after the finding ({found_at.isoformat()})")
    if now is not None and deadline <= now:
        raise FieldworkInputError(field, f"{deadline.isoformat()} is not in the future (server time {now.isoformat()})")


def report(
    conn: Conn, data: Mapping[str, Any], actor: str, scope: Scope = WHOLE_COUNTY, now: dt.datetime | None = None
) -> int:
    """A hazard reported directly (``POST /hazards``): a building or a position, category, severity,
    responsible party, found time (default now) and deadline (default by severity). With
    ``incident_id`` the incident that revealed it is linked (both ways)."""
    from gis.fieldwork.links import link, locked_incident

    now = now or dt.datetime.now(dt.UTC)
    category = choice(data, "category", HAZARD_CATEGORIES)
    if category is None:
        raise FieldworkInputError("category", f"missing; one of {', '.join(HAZARD_CATEGORIES)}")
    severity = choice(data, "severity", HAZARD_SEVERITIES) or "medium"
    party = choice(data, "responsible_party", HAZARD_PARTIES)
    description = text(data, "description", 4000)
    found_at = instant(data, "found_at", now) or now
    deadline = instant(data, "deadline", now, future_ok=True) or found_at + dt.timedelta(days=DEFAULT_DAYS[severity])
    check_deadline("deadline", deadline, found_at)
    building_id = data.get("building_id")
    lonlat = position(data)
    if building_id is None and lonlat is None:
        raise FieldworkInputError("building_id", "missing; give a building_id or lon and lat")
    if building_id is not None:
        from gis.fieldwork.buildings import lock_building

        lock_building(conn, building_id, scope)
    incident_id = data.get("incident_id")
    if incident_id is not None:
        locked_incident(conn, incident_id, scope)
    source = "incident" if incident_id is not None else "report"
    # Where the hazard lies is known once the insert has assigned it: a savepoint takes back the
    # row, its event and its job when it falls outside the caller's scope.
    with conn.begin_nested():
        row = open_hazard(
            conn, category=category, severity=severity, party=party, found_at=found_at, deadline=deadline,
            actor=actor, source=source, building_id=building_id, lonlat=lonlat, description=description,
        )  # fmt: skip
        if not scope.contains_any(row[1:]):
            from gis.fieldwork.links import OutsideScope

            raise OutsideScope(f"the position lies outside the key's scope ({scope.label()}); nothing is stored")
    if incident_id is not None:
        link(conn, row.id, incident_id, "incident", actor, now)
    audit.record(conn, actor, "hazard.report", f"hazard/{row.id}", category=category, severity=severity)
    return int(row.id)


def lock(conn: Conn, hazard_id: int, scope: Scope = WHOLE_COUNTY) -> sa.RowMapping:
    in_scope, params = scope.where("h")
    row = (
        conn.execute(
            sa.text(
                "SELECT h.id, h.status, h.severity, h.found_at, h.rectify_by, h.escalation_level, "  # noqa: S608
                f"h.inspection_id, h.item_code FROM hazards h WHERE h.id = :id AND {in_scope} FOR UPDATE"
            ),
            {"id": hazard_id, **params},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound("hazard", hazard_id)
    return row


def _item_days(conn: Conn, hazard: Mapping[str, Any] | sa.RowMapping) -> int:
    """The days the hazard's checklist item gives to rectify (the severity's default without one)."""
    if hazard["inspection_id"] is not None and hazard["item_code"] is not None:
        days = conn.execute(
            sa.text(
                "SELECT ci.rectify_days FROM inspections i JOIN checklist_items ci "
                "ON ci.checklist_id = i.checklist_id AND ci.code = :code WHERE i.id = :insp"
            ),
            {"code": hazard["item_code"], "insp": hazard["inspection_id"]},
        ).scalar_one_or_none()
        if days is not None:
            return int(days)
    return DEFAULT_DAYS[hazard["severity"]]


def apply(
    conn: Conn,
    hazard: Mapping[str, Any] | sa.RowMapping,
    verb: str,
    actor: str,
    now: dt.datetime,
    *,
    result: str | None = None,
    deadline: dt.datetime | None = None,
    note: str | None = None,
    inspection_id: int | None = None,
) -> str:
    """One step of ``hazard`` (a locked row); returns its new status. A re-inspection needs
    ``result`` (pass or fail); a failed one, and ``start`` from overdue, set ``deadline`` (default:
    the item's period from now)."""
    hazard_id, current = hazard["id"], hazard["status"]
    froms, target = ACTIONS[verb]
    if current not in froms:
        raise IllegalHazardTransition(hazard_id, current, verb)
    new_deadline: dt.datetime | None = None
    if verb == "reinspect":
        if result not in ("pass", "fail"):
            raise FieldworkInputError("result", f"{result!r}: a re-inspection's result is pass or fail")
        target = "rectified" if result == "pass" else "rectifying"
    if target == "rectifying" and (deadline is not None or result == "fail" or current == "overdue"):
        new_deadline = deadline or now + dt.timedelta(days=_item_days(conn, hazard))
        check_deadline("deadline", new_deadline, hazard["found_at"], now)
    assert target is not None
    conn.execute(
        sa.text(
            """UPDATE hazards SET status = CAST(:to AS varchar), updated_at = :now,
                 rectify_by = coalesce(:deadline, rectify_by),
                 escalation_due_at = CASE WHEN CAST(:deadline AS timestamptz) IS NULL
                                          THEN escalation_due_at END,
                 notified_at = CASE WHEN CAST(:to AS varchar) = 'notified' THEN :now ELSE notified_at END,
                 submitted_at = CASE WHEN CAST(:to AS varchar) = 'submitted' THEN :now ELSE submitted_at END,
                 rectified_at = CASE WHEN CAST(:to AS varchar) = 'rectified' THEN :now ELSE rectified_at END
               WHERE id = :id"""
        ),
        {"to": target, "now": now, "deadline": new_deadline, "id": hazard_id},
    )
    action = f"reinspect_{result}" if verb == "reinspect" else verb
    event(conn, hazard_id, now, actor, action, current, target, deadline=new_deadline, inspection_id=inspection_id,
          note=note)  # fmt: skip
    if new_deadline is not None:
        overdue.schedule(conn, hazard_id, new_deadline, hazard["escalation_level"])
    audit.record(conn, actor, "hazard.transition", f"hazard/{hazard_id}", step=action, frm=current, to=target)
    return target


def transition(
    conn: Conn,
    hazard_id: int,
    data: Mapping[str, Any],
    actor: str,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
) -> str:
    """``POST /hazards/{id}/transitions``: ``action`` (notify, start, submit, reinspect, or the
    status it leads to), ``result`` for a re-inspection, an optional ``deadline`` and ``note``."""
    now = now or dt.datetime.now(dt.UTC)
    raw = data.get("action")
    verb = _BY_STATUS.get(raw, raw) if isinstance(raw, str) else None
    if verb not in ACTIONS:
        accepted = ", ".join([*ACTIONS, *_BY_STATUS])
        raise FieldworkInputError("action", f"{str(raw)[:40]!r} is not one of {accepted}")
    result = data.get("result")
    if raw == "rectified":
        result = result or "pass"
    if result is not None and result not in ("pass", "fail"):
        raise FieldworkInputError("result", f"{str(result)[:40]!r} is not one of pass, fail")
    if verb != "reinspect" and result is not None:
        raise FieldworkInputError("result", f"only a re-inspection has a result, not {verb!r}")
    deadline = instant(data, "deadline", now, future_ok=True)
    note = text(data, "note", 2000)
    hazard = lock(conn, hazard_id, scope)
    return apply(conn, hazard, verb, actor, now, result=result, deadline=deadline, note=note)
