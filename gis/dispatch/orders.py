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
from gis.dispatch.assignments import (
    Holder,
    check_not_holding,
    get_assignment,
    insert_offer,
    lock_incident,
    log_event,
    resolve_holder,
)
from gis.dispatch.errors import DispatchConflict, DispatchInputError, NotPermitted
from gis.dispatch.routing import OFFER_QUEUE, OFFER_TASK
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn
from gis.work.jobs import NAMESPACE, defer

MAX_TEXT = 2000
SUPERVISION_TASK = f"{NAMESPACE}:supervision_due"


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
    today = now.astimezone(COUNTY_TZ).date()
    units = []
    for code in dict.fromkeys(org_units):  # every unit is checked before anything is written
        try:
            _, uid, label = resolve_holder(conn, incident, None, code, scope, today, county_units_anywhere=True)
        except DispatchInputError as exc:
            raise DispatchInputError("org_units", exc.reason) from None
        check_not_holding(conn, incident_id, None, uid)
        units.append((uid, label))
    made = []
    for uid, label in units:
        aid = insert_offer(
            conn, incident_id, kind="summon", role="co", person_id=None, org_unit_id=uid,
            level=incident["escalation_level"], accept_by=report_by, now=now, actor=actor, note=note,
        )  # fmt: skip
        defer(conn, OFFER_TASK, {"assignment_id": aid}, queue=OFFER_QUEUE, at=report_by, lock=f"assignment:{aid}")
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
    defer(conn, SUPERVISION_TASK, {"supervision_id": row.id}, queue=OFFER_QUEUE, at=due_at)
    log_event(conn, incident_id, now, actor, "supervise", incident["status"],
              f"reply required by {due_at.isoformat()}: {text}")  # fmt: skip
    audit.record(conn, actor, "incident.supervise", f"incident/{incident_id}", due_at=due_at, supervision=row.id)
    return dict(row._mapping)


_SUPERVISION_COLUMNS = "id, incident_id, at, actor, due_at, instruction, reply, replied_at, replied_by"
_REPLY = f"UPDATE incident_supervisions SET reply = :r, replied_at = :now, replied_by = :actor WHERE id = :s RETURNING {_SUPERVISION_COLUMNS}"  # noqa: S608, E501


def list_supervisions(conn: Conn, incident_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(f"SELECT {_SUPERVISION_COLUMNS} FROM incident_supervisions WHERE incident_id = :i ORDER BY id"),  # noqa: S608
        {"i": incident_id},
    )
    return [dict(r._mapping) for r in rows]


def reply(
    conn: Conn,
    incident_id: int,
    supervision_id: int,
    who: Holder,
    text: str | None,
    *,
    may_answer_any: bool = False,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The required reply to a supervision order, by a holder of the incident (or a dispatcher:
    ``may_answer_any``); an order is answered once."""
    now = now or dt.datetime.now(dt.UTC)
    answer = _text("reply", text, True)
    incident = lock_incident(conn, incident_id, scope)
    row = conn.execute(
        sa.text(
            f"SELECT {_SUPERVISION_COLUMNS} FROM incident_supervisions WHERE id = :s AND incident_id = :i FOR UPDATE"  # noqa: S608
        ),
        {"s": supervision_id, "i": incident_id},
    ).one_or_none()
    if row is None:
        raise DispatchInputError("supervision_id", f"incident {incident_id} has no supervision order {supervision_id}")
    if row.reply is not None:
        raise DispatchConflict(f"supervision order {supervision_id} was answered at {row.replied_at.isoformat()}")
    if not may_answer_any:
        holds = conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM incident_assignments WHERE incident_id = :i "
                "AND state IN ('offered', 'accepted') AND (person_id = :p OR org_unit_id = :o))"
            ),
            {"i": incident_id, "p": who.person_id, "o": who.org_unit_id},
        ).scalar()
        if not holds:
            raise NotPermitted(f"incident {incident_id}: only its holders (or a dispatcher) answer its supervision")
    out = conn.execute(
        sa.text(_REPLY),
        {"r": answer, "now": now, "actor": who.actor, "s": supervision_id},
    ).one()
    log_event(conn, incident_id, now, who.actor, "reply", incident["status"], f"supervision {supervision_id}: {answer}")
    audit.record(conn, who.actor, "incident.reply", f"incident/{incident_id}", supervision=supervision_id)
    return dict(out._mapping)


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
