"""The acceptance deadline of an offer (a job, gis.work.tasks.offer_deadline): an offer still not
accepted at its ``accept_by`` is withdrawn and the incident goes one level up (grid -> village ->
town -> county centre), where the routing rules offer it to that level's centre. A summons not
reported in by its deadline, and a supervision order without a reply at its due date
(``supervision_due``), remind the holders (催办, by the system) instead.

Idempotent: the body acts only on an offer still ``offered`` and past its deadline, under the
locks of the incident and the offer, in one transaction; a second run finds it withdrawn.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gis.core.vocab import PENDING_STATUSES
from gis.dispatch.assignments import log_event
from gis.incidents import rules
from gis.spatial.areas import Conn

SYSTEM_ACTOR = "system"


def expire_offer(conn: Conn, assignment_id: int, now: dt.datetime | None = None, actor: str = SYSTEM_ACTOR) -> bool:
    """Withdraw offer ``assignment_id`` if it is still open past its deadline, escalate its
    incident one level (a lead offer of a pending incident below the county) and route it there;
    True when the offer expired."""
    from gis.incidents.workflow import escalate  # the workflow imports this package

    now = now or dt.datetime.now(dt.UTC)
    # The incident's row first, then the offer's: the order every dispatch step locks them in.
    incident_id = conn.execute(
        sa.text("SELECT incident_id FROM incident_assignments WHERE id = :id"), {"id": assignment_id}
    ).scalar()
    if incident_id is None:
        return False
    conn.execute(sa.text("SELECT 1 FROM incidents WHERE id = :i FOR UPDATE"), {"i": incident_id})
    row = conn.execute(
        sa.text(
            "SELECT a.incident_id, a.state, a.role, a.kind, a.level, a.accept_by, i.status, i.escalation_level "
            "FROM incident_assignments a JOIN incidents i ON i.id = a.incident_id WHERE a.id = :id "
            "FOR UPDATE OF a"
        ),
        {"id": assignment_id},
    ).one_or_none()
    if row is None or row.state != "offered" or row.accept_by is None or row.accept_by > now:
        return False
    if row.kind == "summon":  # a department that has not reported in stays summoned, and is reminded
        return _remind_once(conn, row.incident_id, row.status, f"summons {assignment_id}: not reported in", now, actor)
    conn.execute(
        sa.text("UPDATE incident_assignments SET state = 'withdrawn', withdrawn_at = :now WHERE id = :id"),
        {"now": now, "id": assignment_id},
    )
    why = f"offer {assignment_id} not accepted by {row.accept_by.isoformat()}"
    up = rules.next_level(row.escalation_level)
    # Only an offer of the level the incident is still at moves it up: once its handling deadline
    # (or a dispatcher) took it higher, a lower level's lapse is recorded, not escalated again.
    if row.role == "lead" and row.status in PENDING_STATUSES and up is not None and row.level == row.escalation_level:
        escalate(conn, row.incident_id, actor, note=why, now=now)  # routes it to the new level's centre
    else:
        log_event(conn, row.incident_id, now, actor, "expire", row.status, why)
    return True


def _remind_once(conn: Conn, incident_id: int, status: str, note: str, now: dt.datetime, actor: str) -> bool:
    """A reminder (催办) by the system, written once whatever the number of runs."""
    done = conn.execute(
        sa.text("SELECT EXISTS (SELECT 1 FROM incident_events WHERE incident_id = :i AND action = 'remind' "
                "AND actor = :a AND note = :n)"),
        {"i": incident_id, "a": actor, "n": note},
    ).scalar()  # fmt: skip
    if done:
        return False
    log_event(conn, incident_id, now, actor, "remind", status, note)
    return True


def supervision_due(conn: Conn, supervision_id: int, now: dt.datetime | None = None, actor: str = SYSTEM_ACTOR) -> bool:
    """A supervision order's due date has come: without a reply, the holders are reminded (once)."""
    now = now or dt.datetime.now(dt.UTC)
    row = conn.execute(
        sa.text(
            "SELECT s.incident_id, s.due_at, s.reply, i.status FROM incident_supervisions s "
            "JOIN incidents i ON i.id = s.incident_id WHERE s.id = :s FOR UPDATE OF i"
        ),
        {"s": supervision_id},
    ).one_or_none()
    if row is None or row.reply is not None or row.due_at > now:
        return False
    return _remind_once(conn, row.incident_id, row.status, f"supervision {supervision_id}: reply overdue", now, actor)
