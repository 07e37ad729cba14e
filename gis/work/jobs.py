"""The job queue: procrastinate over our own PostgreSQL database.

Time-driven work (an incident's handling deadline, later reminders and notification delivery) is a
row in ``procrastinate_jobs`` (migration 0014) scheduled at its time, written in the SAME
transaction as the change that sets the time: the job commits or rolls back with the incident.
``gridmap worker`` processes (gis.work.worker) run the jobs; procrastinate locks a job while one
worker runs it, retries it on failure, and runs overdue jobs as soon as a worker is up again.

Deferring inside our transaction: procrastinate's own ``defer`` goes through its connector's pool,
outside the caller's transaction. Its SQL function ``procrastinate_defer_jobs_v1`` is one INSERT
into ``procrastinate_jobs`` (the table's triggers record the events and NOTIFY the workers). We
call that function on the caller's connection (``defer``, ``schedule_deadline``), or write its
INSERT as a CTE of a larger statement (``deadline_jobs_sql``: live intake stays one statement).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from gis.core.notify import conninfo_from_url
from gis.core.predicates import is_pending
from gis.core.settings import Settings, get_settings
from gis.core.vocab import ESCALATION_LEVELS
from gis.spatial.areas import Conn

if TYPE_CHECKING:
    import procrastinate

NAMESPACE = "gridmap"  # procrastinate prefixes the tasks' names with it (``gridmap:incident_deadline``)
DEADLINE_QUEUE = "deadlines"
DEADLINE_TASK = f"{NAMESPACE}:incident_deadline"


def deadline_jobs_sql(rows: str) -> str:
    """An INSERT of one deadline job per row of ``rows``, a query (or CTE name) with the columns
    ``incident_id``, ``level`` (the escalation level the deadline belongs to) and ``at``.

    The job's lock (``incident:<id>``) keeps two jobs of one incident from running at once; the
    level makes a job stale once the incident has moved on, so a re-run changes nothing."""
    # Only constants and the caller's SQL text are formatted in, never values.
    return f"""INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, scheduled_at)
        SELECT '{DEADLINE_QUEUE}', '{DEADLINE_TASK}', 'incident:' || r.incident_id,
               jsonb_build_object('incident_id', r.incident_id, 'level', r.level), r.at
        FROM {rows} r"""  # noqa: S608


# procrastinate's own defer function, on the caller's connection: a job of any task (reminders,
# notification delivery) joins the caller's transaction the same way.
_DEFER_SQL = sa.text(
    "SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, :priority, :lock, :queueing_lock, "
    "CAST(:args AS jsonb), :at)::procrastinate_job_to_defer_v1]))[1]"
)


def defer(
    conn: Conn,
    task: str,
    args: dict[str, Any],
    *,
    queue: str = "default",
    at: dt.datetime | None = None,
    lock: str | None = None,
    queueing_lock: str | None = None,
    priority: int = 0,
) -> int:
    """Queue a job of ``task`` (its full name, ``gridmap:<name>``) with ``args``, run at ``at``
    (None = now), in the caller's transaction; returns the job's id. A ``queueing_lock`` already
    waiting in the queue raises IntegrityError (procrastinate's AlreadyEnqueued)."""
    params = {
        "queue": queue,
        "task": task,
        "priority": priority,
        "lock": lock,
        "queueing_lock": queueing_lock,
        "args": json.dumps(args),
        "at": at,
    }
    return int(conn.execute(_DEFER_SQL, params).scalar_one())


def schedule_deadline(conn: Conn, incident_id: int, at: dt.datetime, level: str) -> int:
    """Schedule the deadline job of ``incident_id`` at ``at`` for its escalation ``level``, in the
    caller's transaction (the same job ``deadline_jobs_sql`` writes); returns the job's id."""
    args = {"incident_id": incident_id, "level": level}
    return defer(conn, DEADLINE_TASK, args, queue=DEADLINE_QUEUE, at=at, lock=f"incident:{incident_id}")


# Pending incidents below the top level whose deadline has no job waiting: rows that came in
# without one (bulk imports, the demo's top-up, rows older than the queue).
_MISSING_ROWS = f"""(SELECT i.id AS incident_id, i.escalation_level AS level, i.deadline_at AS at
    FROM incidents i
    WHERE {is_pending("i")} AND i.deadline_at IS NOT NULL AND i.escalation_level <> :top
      AND NOT EXISTS (
          SELECT 1 FROM procrastinate_jobs j
          WHERE j.lock = 'incident:' || i.id AND j.status IN ('todo', 'doing')
            AND j.task_name = '{DEADLINE_TASK}' AND j.args->>'level' = i.escalation_level))"""  # noqa: S608
_MISSING_SQL = sa.text(f"{deadline_jobs_sql(_MISSING_ROWS)} RETURNING id")
_MISSING_LOCK = 0x6A6F6273  # "jobs": one process at a time schedules the missing deadlines


def schedule_missing_deadlines(conn: Conn) -> int:
    """Schedule the deadline job of every pending incident that has none; returns how many. Run
    by the sweep (gis.work.tasks), so an imported incident's deadline is a job within a minute."""
    if not conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _MISSING_LOCK}).scalar():
        return 0
    top = list(ESCALATION_LEVELS)[-1]
    return len(conn.execute(_MISSING_SQL, {"top": top}).all())


def conninfo(settings: Settings | None = None) -> str:
    """The libpq URI of our database (procrastinate's psycopg pool takes libpq's forms)."""
    from gis.core.db import database_url

    return conninfo_from_url(database_url(settings or get_settings()))


@functools.cache
def get_app() -> procrastinate.App:
    """The procrastinate app of this process over the configured database, with gridmap's tasks."""
    import procrastinate

    from gis.outbound import tasks as outbound_tasks
    from gis.work import tasks

    settings = get_settings()
    # Small pool: the worker holds one connection to LISTEN and one or two to fetch and finish jobs;
    # the job bodies use gis.work.tasks' own SQLAlchemy engine.
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(settings), min_size=1, max_size=max(2, settings.worker_concurrency)
    )
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(tasks.blueprint, namespace=NAMESPACE)
    app.add_tasks_from(outbound_tasks.blueprint, namespace=NAMESPACE)  # webhooks and hotline callbacks
    return app
