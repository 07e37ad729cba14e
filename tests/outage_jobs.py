"""The deadline half of the outage test (tests/api/test_db_outage.py): the workers, the kill,
and the checks that every deadline fired once.

A ledger of finished jobs: ``gridmap worker`` deletes a job once it succeeded (gis.work.worker:
``delete_jobs``), so the queue itself keeps no trace of it. A trigger on ``procrastinate_jobs`` in
the test's own database copies every deleted row: a job deleted while ``doing`` is a job that
succeeded (procrastinate deletes a running job only when it finishes it successfully; a cancelled
job is deleted from ``todo``). It is written in the worker's own transaction, so a worker killed
before it finished a job leaves no ledger row for it.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gis.core import db
from gis.core.vocab import PENDING_STATUSES
from gis.dispatch.routing import OFFER_TASK
from gis.spatial.areas import Conn
from gis.work.jobs import DEADLINE_TASK
from tests.dispatch_roster import GRID1
from tests.gis.test_jobs import Worker

DEADLINE_S = 2.0  # a dispute's handling deadline
ACCEPT_S = 3.0  # an offer's acceptance deadline
DEADLINE_ENV = {
    "GRIDMAP_DEADLINE_HOURS": f'{{"dispute": {DEADLINE_S / 3600}}}',
    "GRIDMAP_ACCEPT_WITHIN_S": str(ACCEPT_S),
    "GRIDMAP_ACCEPT_WITHIN_110_S": str(ACCEPT_S),
}
DEADLINE_TASKS = (DEADLINE_TASK, OFFER_TASK)


def seat_grid_worker(conn: Conn) -> None:
    """A grid worker on duty in GRID1 (tests/dispatch_roster.py), the only holder: each report
    there is offered to them at intake. No centre is set up, so an escalation offers nothing new
    and each incident has two deadline jobs (handling, acceptance): the queue stays small enough
    for a loaded machine to keep up with sustained intake."""
    pid = conn.execute(sa.text("INSERT INTO people (name) VALUES ('网格员甲') RETURNING id")).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO postings (person_id, role, layer, area_code, starts_on) "
            "VALUES (:p, 'grid_worker', 'grid', :a, DATE '2020-01-01')"
        ),
        {"p": pid, "a": GRID1},
    )


_LEDGER_DDL = (
    """CREATE TABLE test_job_ledger (
        job_id bigint NOT NULL, task_name text NOT NULL, args jsonb NOT NULL, status text NOT NULL,
        attempts integer NOT NULL, scheduled_at timestamptz, finished_at timestamptz NOT NULL)""",
    """CREATE FUNCTION test_job_ledger_log() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO test_job_ledger (job_id, task_name, args, status, attempts, scheduled_at, finished_at)
        VALUES (OLD.id, OLD.task_name, OLD.args, OLD.status::text, OLD.attempts, OLD.scheduled_at,
                clock_timestamp());
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER test_job_ledger AFTER DELETE ON procrastinate_jobs
        FOR EACH ROW EXECUTE FUNCTION test_job_ledger_log()""",
)


def install_ledger(conn: Conn) -> None:
    """Start recording finished jobs in ``test_job_ledger`` (a test database only)."""
    for statement in _LEDGER_DDL:
        conn.execute(sa.text(statement))


@dataclass(frozen=True)
class Finished:
    job_id: int
    task: str
    args: tuple[tuple[str, Any], ...]  # sorted, hashable
    status: str  # the status it was deleted from: 'doing' = succeeded
    attempts: int
    scheduled_at: dt.datetime | None
    finished_at: dt.datetime


def finished_jobs(conn: Conn, tasks: tuple[str, ...]) -> list[Finished]:
    rows = conn.execute(
        sa.text(
            "SELECT job_id, task_name, args, status, attempts, scheduled_at, finished_at FROM test_job_ledger "
            "WHERE task_name = ANY(:t) ORDER BY finished_at"
        ),
        {"t": list(tasks)},
    ).all()
    return [
        Finished(r.job_id, r.task_name, tuple(sorted(r.args.items())), r.status, r.attempts, r.scheduled_at,
                 r.finished_at)
        for r in rows
    ]  # fmt: skip


class Workers:
    """``gridmap worker`` processes on the outage database (tests/gis/test_jobs.py's ``Worker``,
    with a 1 s heartbeat: a killed worker's jobs go back to the queue 3 s after its last one)."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url, self.logs = url, logs
        self.started: list[Worker] = []

    def start(self) -> Worker:
        worker = Worker(self.url, self.logs / f"worker{len(self.started)}.log")
        self.started.append(worker)
        return worker

    def log_tail(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("worker*.log")))[-3000:]


_RUNNING = sa.text(
    "SELECT j.id, j.worker_id FROM procrastinate_jobs j WHERE j.status = 'doing' AND ("
    "(j.task_name = :deadline AND CAST(j.args->>'incident_id' AS bigint) = ANY(:ids)) OR "
    "(j.task_name = :offer AND CAST(j.args->>'assignment_id' AS bigint) IN "
    "(SELECT id FROM incident_assignments WHERE incident_id = ANY(:ids))))"
)


_UPCOMING = sa.text(
    "SELECT CAST(j.args->>'incident_id' AS bigint) FROM procrastinate_jobs j "
    "WHERE j.task_name = :deadline AND j.status = 'todo' AND CAST(j.args->>'incident_id' AS bigint) = ANY(:ids) "
    "AND j.scheduled_at > now() + interval '300 milliseconds' ORDER BY j.scheduled_at LIMIT 2"
)


def kill_a_worker_mid_job(url: str, incidents: list[int], pool: Workers, first_id: int) -> list[int]:
    """kill -9 a worker while it runs deadline jobs, start another; return those jobs' ids. The
    first of the two workers has procrastinate id ``first_id``, the second a later one: whichever
    of them took the held jobs is killed.

    The test holds the rows of the two incidents whose deadline jobs come next: when their handling and
    acceptance deadlines come (4 jobs, 2 per worker at most), the jobs start and wait inside their
    bodies for the rows, so the first worker is certainly in the middle of one when it is killed."""
    eng = db.make_engine(url, pool_size=2, max_overflow=0)
    try:
        # The two incidents whose deadline jobs are still to come (not the last two acknowledged:
        # on a loaded machine an answer can arrive after its 2-s deadline job has already run,
        # and a held row whose job is done is never waited on).
        with eng.connect() as conn:
            ids = list(conn.execute(_UPCOMING, {"ids": incidents, "deadline": DEADLINE_TASK}).scalars())
        ids = ids or sorted(incidents)[-2:]
        params = {"ids": ids, "deadline": DEADLINE_TASK, "offer": OFFER_TASK}
        with eng.connect() as holder:
            held = holder.begin()
            holder.execute(sa.text("SELECT id FROM incidents WHERE id = ANY(:ids) FOR UPDATE"), {"ids": ids})
            rows: list[sa.Row[tuple[int, int]]] = []
            end = time.monotonic() + 20
            while not rows and time.monotonic() < end:
                time.sleep(0.1)
                with eng.connect() as conn:
                    rows = list(conn.execute(_RUNNING, params).all())
            assert rows, f"no worker ran the held incidents' jobs: {pool.log_tail()}"
            victim = rows[0].worker_id
            running = [r.id for r in rows if r.worker_id == victim]
            pool.started[0 if victim == first_id else 1].kill()
            held.rollback()
        pool.start()
    finally:
        eng.dispose()
    return running


_DUE_JOBS = sa.text(
    "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') AND (task_name = :offer "
    "OR (task_name = :deadline AND scheduled_at < now() + interval '1 hour'))"
)


def wait_for_due_jobs(eng: sa.Engine, stuck_s: float = 15, cap_s: float = 90) -> float:
    """Wait until no acceptance deadline and no handling deadline due within the hour is queued
    (the higher levels' handling deadlines are hours away); returns the seconds waited. An offer
    that expires queues the next level's offer in the same transaction, so an empty queue means
    every incident has climbed as far as it goes. A loaded machine drains the backlog slowly: the
    wait ends early only when the queue has not shrunk for ``stuck_s``."""
    start = last_change = time.monotonic()
    params = {"offer": OFFER_TASK, "deadline": DEADLINE_TASK}
    queued = None
    while time.monotonic() < min(start + cap_s, last_change + stuck_s):
        with eng.connect() as conn:
            now_queued = conn.execute(_DUE_JOBS, params).scalar_one()
        if now_queued == 0:
            break
        if queued is None or now_queued < queued:
            queued, last_change = now_queued, time.monotonic()
        time.sleep(0.5)
    return time.monotonic() - start


def _from_level(note: str) -> str:
    """The level an escalation left: its event's note reads "overdue: grid → village" (a handling
    deadline) or "grid → village: offer ... not accepted" (an acceptance deadline)."""
    found = re.search(r"(\w+) → ", note)
    assert found, f"an escalation without its levels: {note!r}"
    return found.group(1)


def assert_deadlines_fired_once(url: str, incidents: list[int], killed: list[int], logs: Workers) -> str:
    """Every deadline of ``incidents`` ran once and did its work once; returns a summary."""
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        waited = wait_for_due_jobs(eng)
        time.sleep(1.5)  # long enough for a second run to show
        with eng.connect() as conn:
            done = finished_jobs(conn, DEADLINE_TASKS)
            ids = {"ids": incidents}
            offers = conn.execute(
                sa.text(
                    "SELECT id, incident_id, level FROM incident_assignments WHERE incident_id = ANY(:ids) "
                    "AND role = 'lead' AND kind = 'dispatch' AND accept_by IS NOT NULL"
                ),
                ids,
            ).all()
            left = conn.execute(
                sa.text(
                    "SELECT id, task_name, args, status, scheduled_at FROM procrastinate_jobs WHERE task_name = "
                    "ANY(:t) AND (status <> 'todo' OR scheduled_at < now() + interval '1 hour')"
                ),
                {"t": list(DEADLINE_TASKS)},
            ).all()
            events = conn.execute(
                sa.text(
                    "SELECT incident_id, action, note FROM incident_events WHERE incident_id = ANY(:ids) "
                    "AND action IN ('escalate', 'expire')"
                ),
                ids,
            ).all()
            overdue = conn.execute(
                sa.text(
                    "SELECT id FROM incidents WHERE id = ANY(:ids) AND status = ANY(:pending) "
                    "AND escalation_level <> 'county' AND deadline_at < now()"
                ),
                {**ids, "pending": list(PENDING_STATUSES)},
            ).all()
            unexpired = conn.execute(
                sa.text(
                    "SELECT id FROM incident_assignments WHERE incident_id = ANY(:ids) AND role = 'lead' "
                    "AND state = 'offered' AND accept_by < now()"
                ),
                ids,
            ).all()
    finally:
        eng.dispose()

    runs = Counter((f.task, f.args) for f in done)
    twice = {k: n for k, n in runs.items() if n > 1}
    assert not twice, f"jobs that ran more than once: {list(twice.items())[:5]}\n{logs.log_tail()}"
    assert all(f.status == "doing" for f in done), [f for f in done if f.status != "doing"][:5]
    assert not left, f"deadline jobs left after {waited:.0f} s (status, time): {left[:5]}\n{logs.log_tail()}"
    # Each incident was routed at intake; its handling deadline and each lead offer's deadline ran.
    assert {o.incident_id for o in offers if o.level == "grid"} == set(incidents)
    handling = {(DEADLINE_TASK, (("incident_id", i), ("level", "grid"))) for i in incidents}
    accepting = {(OFFER_TASK, (("assignment_id", o.id),)) for o in offers}
    missing = (handling | accepting) - set(runs)
    assert not missing, f"{len(missing)} deadline jobs never ran: {sorted(missing)[:5]}"
    # Their work was done once: one escalation per incident and level, one expiry per offer.
    escalated = Counter((e.incident_id, _from_level(e.note)) for e in events if e.action == "escalate")
    expired = Counter((e.incident_id, e.note) for e in events if e.action == "expire")
    assert all(n == 1 for n in escalated.values()), [k for k, n in escalated.items() if n > 1][:5]
    assert all(n == 1 for n in expired.values()), [k for k, n in expired.items() if n > 1][:5]
    assert {i for i, level in escalated if level == "grid"} == set(incidents)
    assert not overdue, f"pending incidents left past their deadline: {overdue[:5]}"
    assert not unexpired, f"offers left open past their deadline: {unexpired[:5]}"
    # The killed worker's jobs went back to the queue and succeeded once, on another attempt.
    retried = {f.job_id: f.attempts for f in done if f.job_id in killed}
    assert set(retried) == set(killed) and all(n >= 1 for n in retried.values()), (killed, retried)

    late = sorted((f.finished_at - f.scheduled_at).total_seconds() for f in done if f.attempts == 0 and f.scheduled_at)
    return (
        f"{len(done)} deadline jobs ran once each ({len(accepting)} offers, {sum(1 for f in done if f.attempts)} "
        f"retried, {len(killed)} of them killed mid-job), {sum(escalated.values())} escalations, "
        f"{len(expired)} offers expired without escalating; "
        f"finished after their time: median {late[len(late) // 2]:.2f} s, max {late[-1]:.2f} s; "
        f"queue empty {waited:.1f} s after intake stopped"
    )
