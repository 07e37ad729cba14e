"""Dispatch by hand (派遣): a dispatcher offers an incident to a person or an organisation unit, as
its lead (a re-dispatch replaces the active lead) or a co-handler. The holder must exist, serve
the incident's area and lie inside the dispatcher's scope (gis.dispatch.assignments.resolve_holder).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.settings import Settings, get_settings
from gis.core.vocab import ASSIGNMENT_ROLES, COUNTY_TZ, FINAL_STATUSES
from gis.dispatch.assignments import check_not_holding, get_assignment, insert_offer, lock_incident, resolve_holder
from gis.dispatch.errors import DispatchConflict, DispatchInputError
from gis.dispatch.routing import OFFER_QUEUE, OFFER_TASK
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn
from gis.work.jobs import defer


def accept_window(source: str, settings: Settings) -> dt.timedelta:
    seconds = settings.accept_within_110_s if source == "hotline_110" else settings.accept_within_s
    return dt.timedelta(seconds=seconds)


def dispatch(
    conn: Conn,
    incident_id: int,
    actor: str,
    *,
    person_id: int | None = None,
    org_unit: str | None = None,
    role: str = "lead",
    note: str | None = None,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Dispatch (派遣) by hand: offer the incident to a person or a unit as its lead (replacing the
    active lead: a re-dispatch) or as a co-handler. A lead offered to an accepted (立案) incident
    moves it to ``dispatched``. Returns the new assignment."""
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    if role not in ASSIGNMENT_ROLES:
        raise DispatchInputError("role", f"{role!r} is not one of {', '.join(ASSIGNMENT_ROLES)}")
    incident = lock_incident(conn, incident_id, scope)
    status = incident["status"]
    if status in FINAL_STATUSES:
        raise DispatchConflict(f"incident {incident_id} is {status}: it is not dispatched any more")
    today = now.astimezone(COUNTY_TZ).date()
    pid, uid, label = resolve_holder(conn, incident, person_id, org_unit, scope, today)
    check_not_holding(conn, incident_id, pid, uid)  # before any write: an error leaves nothing behind
    replaced = ""
    if role == "lead":
        old = conn.execute(
            sa.text(
                "UPDATE incident_assignments SET state = 'withdrawn', withdrawn_at = :now "
                "WHERE incident_id = :i AND role = 'lead' AND kind = 'dispatch' AND state IN ('offered', 'accepted') "
                "AND (person_id IS DISTINCT FROM :p OR org_unit_id IS DISTINCT FROM :o) RETURNING id"
            ),
            {"now": now, "i": incident_id, "p": pid, "o": uid},
        ).scalar()
        replaced = f" (replacing assignment {old})" if old is not None else ""
    accept_by = now + accept_window(incident["source"], settings)
    level = incident["escalation_level"]
    assignment_id = insert_offer(
        conn, incident_id, kind="dispatch", role=role, person_id=pid, org_unit_id=uid, level=level,
        accept_by=accept_by, now=now, actor=actor, note=note,
    )  # fmt: skip
    if role == "lead":
        defer(conn, OFFER_TASK, {"assignment_id": assignment_id}, queue=OFFER_QUEUE, at=accept_by,
              lock=f"assignment:{assignment_id}")  # fmt: skip
    to = "dispatched" if role == "lead" and status == "accepted" else status
    if to != status:
        conn.execute(sa.text("UPDATE incidents SET status = :s WHERE id = :id"), {"s": to, "id": incident_id})
    text = f"{role} offered to {label}{replaced}" + (f": {note}" if note else "")
    conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
            "VALUES (:id, :at, :actor, 'dispatch', :frm, :to, :note)"
        ),
        {"id": incident_id, "at": now, "actor": actor, "frm": status, "to": to, "note": text},
    )
    audit.record(conn, actor, "incident.dispatch", f"incident/{incident_id}", assignment=assignment_id, role=role,
                 person_id=pid, org_unit=org_unit)  # fmt: skip
    return get_assignment(conn, assignment_id)
