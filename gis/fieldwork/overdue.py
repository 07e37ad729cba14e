"""Hazard deadlines: a job at the rectification deadline marks the hazard overdue and escalates it
the way incidents are escalated (grid → village → town → county, each level with the incidents'
escalation hours, gis.incidents.rules.ESCALATION_HOURS).

The job (``gridmap:hazard_deadline``) is written in the SAME transaction as the change that sets
the deadline (gis.work.jobs.defer), so it commits or rolls back with the hazard. Its body
(``mark_overdue``) acts only on a hazard that is still at the level the job was scheduled for and
whose due time has passed, all in one statement: a re-run, a stale job (the deadline moved, the
hazard was submitted or rectified meanwhile) or a duplicate changes nothing.

A hazard's due time: its rectification deadline (``rectify_by``) while the responsible party works
on it (open, notified, rectifying); once overdue, the escalated level's deadline
(``escalation_due_at``). A submitted hazard waits for the re-inspection and is never overdue.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gis.core.vocab import ESCALATION_LEVELS, HAZARD_PENDING_STATUSES
from gis.incidents import rules
from gis.spatial.areas import Conn
from gis.work.jobs import DEADLINE_QUEUE, NAMESPACE, defer

HAZARD_TASK = f"{NAMESPACE}:hazard_deadline"
SYSTEM_ACTOR = "system"
_PENDING = ", ".join(f"'{s}'" for s in HAZARD_PENDING_STATUSES)
TOP_LEVEL = ESCALATION_LEVELS[-1]


def is_hazard_overdue(alias: str = "h", now: str = "now()") -> str:
    """SQL: the hazard is overdue at ``now`` (marked so, or pending and past its deadline before
    the job has run): the one meaning of "overdue" for hazard listings, maps and campaigns."""
    a = f"{alias}." if alias else ""
    return f"({a}status = 'overdue' OR ({a}status IN ({_PENDING}) AND {a}rectify_by < {now}))"


def schedule(conn: Conn, hazard_id: int, at: dt.datetime, level: str) -> int:
    """The deadline job of ``hazard_id`` at ``at`` for escalation ``level``, in the caller's transaction."""
    args = {"hazard_id": hazard_id, "level": level}
    return defer(conn, HAZARD_TASK, args, queue=DEADLINE_QUEUE, at=at, lock=f"hazard:{hazard_id}")


def _sql(one: bool) -> sa.TextClause:
    only = "AND h.id = :id AND h.escalation_level = :level" if one else ""
    # A job waits for the row; the sweep passes over rows another transaction holds.
    lock = "FOR UPDATE OF h" if one else "FOR UPDATE OF h SKIP LOCKED"
    return sa.text(
        f"""
        WITH ladder(level, next, hours) AS (
            VALUES ('grid', 'village', CAST(:h_village AS float8)),
                   ('village', 'town', CAST(:h_town AS float8)),
                   ('town', 'county', CAST(:h_county AS float8)),
                   ('county', 'county', CAST(NULL AS float8))),
        due AS (
            SELECT h.id, h.status, h.escalation_level AS from_level, ladder.next, ladder.hours
            FROM hazards h JOIN ladder ON ladder.level = h.escalation_level
            WHERE ((h.status IN ({_PENDING}) AND h.rectify_by <= :now)
                   OR (h.status = 'overdue' AND h.escalation_due_at <= :now))
              {only}
            {lock}),
        up AS (
            UPDATE hazards h
            SET status = 'overdue', overdue_at = coalesce(h.overdue_at, :now), updated_at = :now,
                escalation_level = due.next,
                escalated_at = CASE WHEN due.next <> due.from_level THEN :now ELSE h.escalated_at END,
                escalation_due_at = CAST(:now AS timestamptz) + make_interval(secs => due.hours * 3600)
            FROM due WHERE h.id = due.id
            RETURNING h.id, due.status AS from_status, due.from_level, due.next, h.escalation_due_at),
        ev AS (
            INSERT INTO hazard_events (hazard_id, at, actor, action, from_status, to_status, deadline, note)
            SELECT id, :now, :actor, 'overdue', from_status, 'overdue', escalation_due_at,
                   'deadline passed: ' || from_level || ' → ' || next FROM up),
        au AS (
            INSERT INTO audit_log (actor, action, target, detail)
            SELECT :actor, 'hazard.overdue', 'hazard/' || id,
                   jsonb_build_object('from_status', from_status, 'from_level', from_level, 'to_level', next)
            FROM up),
        job AS (
            INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, scheduled_at)
            SELECT '{DEADLINE_QUEUE}', '{HAZARD_TASK}', 'hazard:' || id,
                   jsonb_build_object('hazard_id', id, 'level', next), escalation_due_at
            FROM up WHERE escalation_due_at IS NOT NULL)
        SELECT count(*) FROM up
        """  # noqa: S608 - only constants are formatted in
    )


_ONE = _sql(True)
_ALL = _sql(False)
_SWEEP_LOCK = 0x68617A64  # "hazd": one process at a time sweeps


def _params(now: dt.datetime) -> dict[str, object]:
    hours = rules.ESCALATION_HOURS
    return {
        "now": now,
        "actor": SYSTEM_ACTOR,
        "h_village": hours["village"],
        "h_town": hours["town"],
        "h_county": hours["county"],
    }


def mark_overdue(conn: Conn, hazard_id: int, level: str, now: dt.datetime | None = None) -> bool:
    """The body of a hazard's deadline job: overdue and one level up if its due time has passed and
    it is still at ``level``; False (nothing changed) otherwise."""
    now = now or dt.datetime.now(dt.UTC)
    moved = conn.execute(_ONE, {**_params(now), "id": hazard_id, "level": level}).scalar_one()
    return bool(moved)


def sweep(conn: Conn, now: dt.datetime | None = None) -> int:
    """Mark every due hazard overdue (imported hazards have no job); returns how many moved."""
    if not conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _SWEEP_LOCK}).scalar():
        return 0
    return int(conn.execute(_ALL, _params(now or dt.datetime.now(dt.UTC))).scalar_one())
