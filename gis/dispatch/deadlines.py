"""The acceptance deadline of an offer (a job, gis.work.tasks.offer_deadline): an offer still not
accepted at its ``accept_by`` is withdrawn and the incident goes one level up (grid -> village ->
town -> county centre), where the routing rules offer it to that level's centre.

Idempotent: the body acts only on an offer still ``offered`` and past its deadline, under the
locks of the incident and the offer, in one transaction; a second run finds it withdrawn.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gis.core.vocab import PENDING_STATUSES
from gis.dispatch.assignments import log_event
from gis.dispatch.routing import route
from gis.incidents import rules
from gis.spatial.areas import Conn

SYSTEM_ACTOR = "system"


def expire_offer(conn: Conn, assignment_id: int, now: dt.datetime | None = None, actor: str = SYSTEM_ACTOR) -> bool:
    """Withdraw offer ``assignment_id`` if it is still open past its deadline, escalate its
    incident one level (a lead offer of a pending incident below the county) and route it there;
    True when the offer expired."""
    from gis.incidents.workflow import escalate  # the workflow imports this package

    now = now or dt.datetime.now(dt.UTC)
    row = conn.execute(
        sa.text(
            "SELECT a.incident_id, a.state, a.role, a.accept_by, i.status, i.escalation_level "
            "FROM incident_assignments a JOIN incidents i ON i.id = a.incident_id WHERE a.id = :id "
            "FOR UPDATE OF i, a"
        ),
        {"id": assignment_id},
    ).one_or_none()
    if row is None or row.state != "offered" or row.accept_by is None or row.accept_by > now:
        return False
    conn.execute(
        sa.text("UPDATE incident_assignments SET state = 'withdrawn', withdrawn_at = :now WHERE id = :id"),
        {"now": now, "id": assignment_id},
    )
    why = f"offer {assignment_id} not accepted by {row.accept_by.isoformat()}"
    up = rules.next_level(row.escalation_level)
    if row.role == "lead" and row.status in PENDING_STATUSES and up is not None:
        escalate(conn, row.incident_id, actor, note=why, now=now)
        route(conn, row.incident_id, actor, now)
    else:
        log_event(conn, row.incident_id, now, actor, "expire", row.status, why)
    return True
