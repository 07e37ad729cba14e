"""Orders about an incident from above: summoning departments (吹哨报到) with a report-in deadline,
supervision orders (督办) with a due date and a required reply, and reminders (催办). Each is in
the incident's history (the SSE stream carries it) and the audit log, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import COUNTY_TZ, FINAL_STATUSES
from gis.dispatch.assignments import get_assignment, insert_offer, lock_incident, log_event, resolve_holder
from gis.dispatch.errors import DispatchConflict, DispatchInputError
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

MAX_TEXT = 2000


def _text(field: str, value: str | None, required: bool) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise DispatchInputError(field, "is required")
        return None
    if len(value) > MAX_TEXT:
        raise DispatchInputError(field, f"is {len(value)} characters long; at most {MAX_TEXT} allowed")
    return value


def _future(field: str, when: dt.datetime, now: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        when = when.replace(tzinfo=COUNTY_TZ)  # the county's clock, as everywhere
    if when <= now:
        raise DispatchInputError(field, f"{when.isoformat()} is not in the future")
    return when


def _open(incident: sa.RowMapping) -> None:
    if incident["status"] in FINAL_STATUSES:
        raise DispatchConflict(f"incident {incident['id']} is {incident['status']}: it has ended")


def summon(
    conn: Conn,
    incident_id: int,
    actor: str,
    org_units: list[str],
    report_by: dt.datetime,
    *,
    note: str | None = None,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Summon departments (吹哨): each unit gets a co-handler assignment of kind ``summon`` whose
    acceptance is its report-in (报到), due by ``report_by``. County-wide departments may be
    summoned from any scope; an unknown unit or a unit not serving the area names the unit (422)."""
    now = now or dt.datetime.now(dt.UTC)
    if not org_units:
        raise DispatchInputError("org_units", "name at least one organisation unit to summon")
    report_by = _future("report_by", report_by, now)
    note = _text("note", note, False)
    incident = lock_incident(conn, incident_id, scope)
    _open(incident)
    made = []
    for code in dict.fromkeys(org_units):
        _, uid, label = resolve_holder(
            conn, incident, None, code, scope, now.astimezone(COUNTY_TZ).date(), county_units_anywhere=True
        )
        aid = insert_offer(
            conn, incident_id, kind="summon", role="co", person_id=None, org_unit_id=uid,
            level=incident["escalation_level"], accept_by=report_by, now=now, actor=actor, note=note,
        )  # fmt: skip
        text = f"{label} summoned, report in by {report_by.isoformat()}" + (f": {note}" if note else "")
        log_event(conn, incident_id, now, actor, "summon", incident["status"], text)
        made.append(get_assignment(conn, aid))
    audit.record(conn, actor, "incident.summon", f"incident/{incident_id}", org_units=org_units, report_by=report_by)
    return made


def supervise(
    conn: Conn,
    incident_id: int,
    actor: str,
    instruction: str,
    due_at: dt.datetime,
    *,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """A supervision order (督办): an instruction and a due date by which a reply is required."""
    now = now or dt.datetime.now(dt.UTC)
    text = _text("instruction", instruction, True)
    due_at = _future("due_at", due_at, now)
    incident = lock_incident(conn, incident_id, scope)
    _open(incident)
    row = conn.execute(
        sa.text(
            "INSERT INTO incident_supervisions (incident_id, at, actor, due_at, instruction) "
            "VALUES (:i, :now, :actor, :due, :text) RETURNING id, incident_id, at, actor, due_at, instruction, "
            "reply, replied_at, replied_by"
        ),
        {"i": incident_id, "now": now, "actor": actor, "due": due_at, "text": text},
    ).one()
    log_event(conn, incident_id, now, actor, "supervise", incident["status"],
              f"reply required by {due_at.isoformat()}: {text}")  # fmt: skip
    audit.record(conn, actor, "incident.supervise", f"incident/{incident_id}", due_at=due_at, supervision=row.id)
    return dict(row._mapping)


def remind(
    conn: Conn,
    incident_id: int,
    actor: str,
    note: str | None = None,
    *,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """A reminder (催办) to the incident's holders; returns who was reminded."""
    now = now or dt.datetime.now(dt.UTC)
    note = _text("note", note, False)
    incident = lock_incident(conn, incident_id, scope)
    _open(incident)
    holders = (
        conn.execute(
            sa.text(
                "SELECT coalesce('person ' || a.person_id, 'org unit ' || ou.code) FROM incident_assignments a "
                "LEFT JOIN org_units ou ON ou.id = a.org_unit_id "
                "WHERE a.incident_id = :i AND a.state IN ('offered', 'accepted') ORDER BY a.id"
            ),
            {"i": incident_id},
        )
        .scalars()
        .all()
    )
    if not holders:
        raise DispatchConflict(f"incident {incident_id}: no one holds it to remind; dispatch it first")
    log_event(conn, incident_id, now, actor, "remind", incident["status"],
              f"reminded {', '.join(holders)}" + (f": {note}" if note else ""))  # fmt: skip
    audit.record(conn, actor, "incident.remind", f"incident/{incident_id}", holders=list(holders), note=note)
    return {"incident_id": incident_id, "reminded": list(holders), "at": now}
