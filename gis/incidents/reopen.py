"""Reopening (重新办理): a dissatisfied callback (gis.analysis.callbacks) or resident rating
(gis.channels.ratings) sends a handled or ended incident back into the loop. The one rule:

* it goes back to its last lead holder: a new offer to that person or unit (with its acceptance
  deadline job), status ``dispatched``;
* with no holder on record (an incident older than dispatch, or one never dispatched), it goes
  where ``rules.REOPEN`` says (handled, verified, closed → in_progress; rejected → reported);
* the handling deadline starts again from now (the category's time; its deadline job), and the
  end and handling marks (closed_at, closed_level, handled_at, verified_at) are cleared;
* the history gets a ``reopen`` event with the actor and why, the audit log an entry.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gis.core import audit
from gis.core.settings import Settings, get_settings
from gis.dispatch.assignments import insert_offer
from gis.dispatch.manual import accept_window
from gis.dispatch.routing import OFFER_QUEUE, OFFER_TASK
from gis.incidents import rules
from gis.spatial.areas import Conn
from gis.work.jobs import defer, schedule_deadline


def _last_lead(conn: Conn, incident_id: int) -> sa.RowMapping | None:
    return (
        conn.execute(
            sa.text(
                "SELECT person_id, org_unit_id FROM incident_assignments WHERE incident_id = :i AND role = 'lead' "
                "AND kind = 'dispatch' AND state IN ('offered', 'accepted', 'done') "
                "ORDER BY offered_at DESC, id DESC LIMIT 1"
            ),
            {"i": incident_id},
        )
        .mappings()
        .one_or_none()
    )


def reopen(
    conn: Conn, incident_id: int, actor: str, why: str, now: dt.datetime, settings: Settings | None = None
) -> str | None:
    """Reopen ``incident_id`` (locked here); returns its new status, or None when it is still
    pending work (nothing to reopen)."""
    settings = settings or get_settings()
    row = (
        conn.execute(
            sa.text("SELECT status, category, source, escalation_level FROM incidents WHERE id = :id FOR UPDATE"),
            {"id": incident_id},
        )
        .mappings()
        .one()
    )
    fallback = rules.REOPEN.get(row["status"])
    if fallback is None:
        return None
    lead = _last_lead(conn, incident_id) if row["status"] != "rejected" else None
    target = "dispatched" if lead is not None else fallback
    deadline = rules.deadline_for(row["category"], now, settings.deadline_hours)
    conn.execute(
        sa.text(
            "UPDATE incidents SET status = :to, deadline_at = :d, closed_at = NULL, closed_level = NULL, "
            "handled_at = NULL, verified_at = NULL WHERE id = :id"
        ),
        {"to": target, "d": deadline, "id": incident_id},
    )
    level = row["escalation_level"]
    if rules.next_level(level) is not None:  # the county centre's deadline escalates nothing
        schedule_deadline(conn, incident_id, deadline, level)
    note = why
    if lead is not None:
        accept_by = now + accept_window(row["source"], settings)
        offer = insert_offer(
            conn, incident_id, kind="dispatch", role="lead", person_id=lead["person_id"],
            org_unit_id=lead["org_unit_id"], level=level, accept_by=accept_by, now=now, actor=actor, note=why,
        )  # fmt: skip
        defer(conn, OFFER_TASK, {"assignment_id": offer}, queue=OFFER_QUEUE, at=accept_by, lock=f"assignment:{offer}")
        holder = f"person {lead['person_id']}" if lead["person_id"] is not None else f"org unit {lead['org_unit_id']}"
        note = f"{why}; offered again to {holder}"
    conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
            "VALUES (:id, :at, :actor, 'reopen', :frm, :to, :note)"
        ),
        {"id": incident_id, "at": now, "actor": actor, "frm": row["status"], "to": target, "note": note},
    )
    audit.record(conn, actor, "incident.reopen", f"incident/{incident_id}", **{"from": row["status"], "to": target})
    return target
