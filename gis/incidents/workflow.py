"""The closed loop (事件闭环): status transitions, manual escalation (提级) and escalation of overdue
incidents. Every step writes the incident's history (who, when, from, to, note) and the audit log.

The allowed transitions and the escalation ladder live in ``gis.incidents.rules``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import SELF_CLOSE_SOURCES
from gis.dispatch.assignments import finish, has_lead
from gis.incidents import rules
from gis.incidents.filter import IncidentFilter
from gis.incidents.intake import clean_text
from gis.incidents.query import get_incident
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn
from gis.work.jobs import deadline_jobs_sql, schedule_deadline

SYSTEM_ACTOR = "system"
# The steps the reporting account may not take on its own incident (unless its source allows it).
SEPARATE_FROM_REPORTING = ("verified", "closed")
# Any constant shared by every process: only one of them escalates at a time.
_ESCALATION_LOCK = 0x67726964  # "grid"


class IncidentNotFound(LookupError):
    def __init__(self, incident_id: int) -> None:
        super().__init__(f"no incident with id {incident_id}")
        self.incident_id = incident_id


class UnknownActionError(ValueError):
    """The action names no status and no verb; ``field`` is the request field to blame."""

    field = "action"


class IllegalTransition(RuntimeError):
    """The incident cannot go where asked from where it is; ``allowed`` lists where it can go."""

    def __init__(self, incident_id: int, current: str, requested: str, allowed: tuple[str, ...], why: str = "") -> None:
        reason = why or f"cannot go from {current!r} to {requested!r}"
        where = f"allowed next: {', '.join(allowed)}" if allowed else f"{current!r} is final"
        super().__init__(f"incident {incident_id}: {reason}; {where}")
        self.incident_id = incident_id
        self.current = current
        self.requested = requested
        self.allowed = allowed


def _lock(conn: Conn, incident_id: int, scope: Scope = WHOLE_COUNTY) -> sa.RowMapping:
    # Outside the caller's scope is the same as missing (404): its existence is not revealed.
    in_scope, params = scope.where()
    row = (
        conn.execute(
            sa.text(
                f"SELECT id, status, escalation_level, source FROM incidents WHERE id = :id AND {in_scope} FOR UPDATE"  # noqa: S608
            ),
            {"id": incident_id, **params},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise IncidentNotFound(incident_id)
    return row


def _event(
    conn: Conn, incident_id: int, at: dt.datetime, actor: str, action: str, frm: str, to: str, note: str | None
) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
            "VALUES (:id, :at, :actor, :action, :frm, :to, :note)"
        ),
        {"id": incident_id, "at": at, "actor": actor, "action": action, "frm": frm, "to": to, "note": note},
    )


def transition(
    conn: Conn,
    incident_id: int,
    action: str,
    actor: str,
    note: str | None = None,
    now: dt.datetime | None = None,
    scope: Scope = WHOLE_COUNTY,
) -> dict[str, Any]:
    """Move an incident one step along the loop; ``action`` is a verb (``accept``) or a status.
    An incident outside ``scope`` (the caller's) is not found."""
    try:
        target = rules.resolve_action(action)
    except rules.RuleError as exc:
        raise UnknownActionError(str(exc)) from None
    note = clean_text({"note": note}, "note")
    now = now or dt.datetime.now(dt.UTC)
    row = _lock(conn, incident_id, scope)
    current = row["status"]
    allowed = rules.TRANSITIONS[current]
    if target not in allowed:
        raise IllegalTransition(incident_id, current, target, allowed)
    if target == "dispatched" and not has_lead(conn, incident_id):
        why = "no one holds it: dispatch it to a person or unit first (POST /incidents/{id}/dispatch)"
        raise IllegalTransition(incident_id, current, target, allowed, why=why.replace("{id}", str(incident_id)))
    if target in SEPARATE_FROM_REPORTING and row["source"] not in SELF_CLOSE_SOURCES:
        reporter = conn.execute(
            sa.text(
                "SELECT actor FROM incident_events WHERE incident_id = :id AND action = 'report' ORDER BY id LIMIT 1"
            ),
            {"id": incident_id},
        ).scalar()
        if reporter == actor:
            why = f"{actor!r} reported it and may not {action} it (reporting stays separate from handling)"
            raise IllegalTransition(incident_id, current, target, allowed, why=why)
    # Closing and rejecting both end the incident; closed_at marks the end either way, and
    # closed_level the level it ended at. handled_at and verified_at keep the loop's times.
    ends = target in rules.FINAL_STATUSES
    conn.execute(
        sa.text(
            "UPDATE incidents SET status = :to, closed_at = CASE WHEN :ends THEN :now ELSE closed_at END, "
            "closed_level = CASE WHEN :ends THEN escalation_level ELSE closed_level END, "
            "handled_at = CASE WHEN :handled THEN :now ELSE handled_at END, "
            "verified_at = CASE WHEN :verified THEN :now ELSE verified_at END WHERE id = :id"
        ),
        {
            "to": target,
            "ends": ends,
            "now": now,
            "id": incident_id,
            "handled": target == "handled",
            "verified": target == "verified",
        },  # fmt: skip
    )
    if ends or target == "handled":
        finish(conn, incident_id, actor, now, final=ends)
    _event(conn, incident_id, now, actor, action, current, target, note)
    detail = {"from": current, "to": target, "note": note}
    audit.record(conn, actor, "incident.transition", f"incident/{incident_id}", **detail)
    return _reload(conn, incident_id)


def escalate(
    conn: Conn,
    incident_id: int,
    actor: str,
    note: str | None = None,
    now: dt.datetime | None = None,
    scope: Scope = WHOLE_COUNTY,
) -> dict[str, Any]:
    """Manual escalation (提级): one level up, with that level's deadline from now. An incident
    outside ``scope`` (the caller's) is not found."""
    note = clean_text({"note": note}, "note")
    now = now or dt.datetime.now(dt.UTC)
    row = _lock(conn, incident_id, scope)
    status, level = row["status"], row["escalation_level"]
    if status not in rules.PENDING_STATUSES:
        raise IllegalTransition(
            incident_id, status, "escalate", rules.TRANSITIONS[status], why=f"a {status!r} incident is not escalated"
        )
    up = rules.next_level(level)
    if up is None:
        raise IllegalTransition(
            incident_id, status, "escalate", rules.TRANSITIONS[status], why="it is already at the county centre"
        )
    deadline = now + dt.timedelta(hours=rules.ESCALATION_HOURS[up])
    conn.execute(
        sa.text("UPDATE incidents SET escalation_level = :up, deadline_at = :d, escalated_at = :now WHERE id = :id"),
        {"up": up, "d": deadline, "now": now, "id": incident_id},
    )
    if rules.next_level(up) is not None:  # the county centre is the top: its deadline escalates nothing
        schedule_deadline(conn, incident_id, deadline, up)
    text = f"{level} → {up}" + (f": {note}" if note else "")
    _event(conn, incident_id, now, actor, "escalate", status, status, text)
    audit.record(conn, actor, "incident.escalate", f"incident/{incident_id}", from_level=level, to_level=up, note=note)
    return _reload(conn, incident_id)


# The incidents escalation moves: the one filter's "overdue" (no other condition, so no parameters).
_DUE, _ = IncidentFilter(overdue=True).where("i", now="now")


# The next level's deadline jobs of the escalated rows (``up``); the top level has no next deadline.
_NEXT_JOBS = deadline_jobs_sql(
    "(SELECT id AS incident_id, next AS level, deadline_at AS at FROM up WHERE next <> :top)"
)


def _overdue_sql(one: bool) -> sa.TextClause:
    """Escalation of overdue incidents, with their events, audit entries and the deadline jobs of
    their new level (none at the top). ``one``: only incident :id, and only while it is still at
    :level (a deadline job; it waits for the row lock), else every overdue incident not locked by
    another transaction (the sweep)."""
    only = "AND i.id = :id AND i.escalation_level = :level" if one else ""
    lock = "FOR UPDATE OF i" if one else "FOR UPDATE OF i SKIP LOCKED"
    return sa.text(
        f"""
        WITH ladder(level, next, hours) AS (
            VALUES ('grid', 'village', CAST(:h_village AS float8)),
                   ('village', 'town', CAST(:h_town AS float8)),
                   ('town', 'county', CAST(:h_county AS float8))),
        due AS (
            SELECT i.id, i.escalation_level AS from_level, ladder.next, ladder.hours
            FROM incidents i JOIN ladder ON ladder.level = i.escalation_level
            WHERE {_DUE} {only}
            {lock}),
        up AS (
            UPDATE incidents i
            SET escalation_level = due.next, escalated_at = :now,
                deadline_at = CAST(:now AS timestamptz) + make_interval(secs => due.hours * 3600)
            FROM due WHERE i.id = due.id
            RETURNING i.id, i.status, i.deadline_at, due.from_level, due.next),
        ev AS (
            INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note)
            SELECT id, :now, :actor, 'escalate', status, status, 'overdue: ' || from_level || ' → ' || next FROM up),
        au AS (
            INSERT INTO audit_log (actor, action, target, detail)
            SELECT :actor, 'incident.escalate', 'incident/' || id,
                   jsonb_build_object('from_level', from_level, 'to_level', next, 'reason', 'overdue')
            FROM up),
        job AS (
            {_NEXT_JOBS})
        SELECT count(*) FROM up
        """  # noqa: S608 - only constants are formatted in
    )


_OVERDUE_SQL = _overdue_sql(one=False)
_ONE_OVERDUE_SQL = _overdue_sql(one=True)
_TOP_LEVEL = list(rules.ESCALATION_LEVELS)[-1]


def _ladder() -> dict[str, Any]:
    return {f"h_{level}": h for level, h in rules.ESCALATION_HOURS.items()} | {"top": _TOP_LEVEL}


def escalate_overdue(conn: Conn, now: dt.datetime | None = None, actor: str = SYSTEM_ACTOR) -> int:
    """Escalate every pending incident past its deadline one level up; returns how many moved.

    Incidents already at the county centre stay there (and stay overdue). Several processes may
    call this at once: an advisory lock lets one of them work and the others return 0.
    """
    now = now or dt.datetime.now(dt.UTC)
    if not conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _ESCALATION_LOCK}).scalar():
        return 0
    return int(conn.execute(_OVERDUE_SQL, {"now": now, "actor": actor, **_ladder()}).scalar_one())


def escalate_if_overdue(
    conn: Conn, incident_id: int, level: str, now: dt.datetime | None = None, actor: str = SYSTEM_ACTOR
) -> bool:
    """Escalate one incident if it is still pending, at ``level`` and past its deadline (its
    deadline job); True when it moved. Once it moved (or was handled) it is no longer at ``level``
    or no longer pending, so running this again changes nothing."""
    now = now or dt.datetime.now(dt.UTC)
    params = {"now": now, "actor": actor, "id": incident_id, "level": level, **_ladder()}
    return bool(conn.execute(_ONE_OVERDUE_SQL, params).scalar_one())


def _reload(conn: Conn, incident_id: int) -> dict[str, Any]:
    incident = get_incident(conn, incident_id)
    if incident is None:  # locked a moment ago in this transaction
        raise IncidentNotFound(incident_id)
    return incident
