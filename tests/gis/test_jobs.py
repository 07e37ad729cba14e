"""Deadline jobs run by real ``gridmap worker`` processes on a committed database of their own.

A deadline job fires once, within 5 s of its time: with two workers at once, after the worker was
down while deadlines passed (it catches up), after a worker was killed (kill -9) in the middle of a
job (another worker retries it; the escalation happens once), and across a database outage. The
outage is the ``database`` mode of tests/api/test_db_outage.py: the throwaway database's sessions
are killed and new ones refused for a few seconds; the shared cluster is never stopped.

Deadlines are seconds long (a category's deadline hours set to a few seconds); the worker's
heartbeat and its dead-worker timeout are shortened the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.core.settings import Settings
from gis.incidents.intake import create_incident
from tests.conftest import ROOT, scratch_database

FIRE_WITHIN_S = 5.0
WORKER_ENV = {"GRIDMAP_JOB_HEARTBEAT_S": "1", "GRIDMAP_JOB_STALLED_AFTER_S": "3", "GRIDMAP_WORKER_CONCURRENCY": "2"}


@pytest.fixture(scope="module")
def jobs_db(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "jobs") as url:
        eng = db.make_engine(url, pool_size=1, max_overflow=0)
        with eng.begin() as conn:
            publish_layers(
                conn, build_mini_county(), note="jobs test", author="tests",
                published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
        eng.dispose()
        yield url


@pytest.fixture
def engine(jobs_db: str) -> Iterator[Engine]:
    eng = db.make_engine(jobs_db, pool_size=2, max_overflow=2)
    yield eng
    eng.dispose()


class Worker:
    """``gridmap worker`` in a process group of its own, output in ``log``."""

    def __init__(self, url: str, log: Path) -> None:
        self.log = log
        env = {**os.environ, **WORKER_ENV, "GRIDMAP_DATABASE_URL": url}
        cmd = [sys.executable, "-c", "from api.cli import main; main()", "worker"]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while "worker running" not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return int(self.proc.returncode)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextmanager
def workers(url: str, tmp_path: Path, n: int = 1) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for k in range(n):
            started.append(Worker(url, tmp_path / f"worker{k}.log"))
        yield started
    finally:
        for w in started:
            w.stop()


def report(engine: Engine, seconds: float, lon: float = 120.905) -> tuple[int, dt.datetime]:
    """A committed report whose deadline is ``seconds`` from now; returns (id, deadline)."""
    settings = Settings(deadline_hours={"dispute": seconds / 3600})
    data = {"lon": lon, "lat": 30.832, "category": "dispute", "source": "resident_app"}
    with db.transaction(engine) as session:
        incident, created = create_incident(session, data, "tests", settings=settings)
    assert created
    return int(incident["id"]), incident["deadline_at"]


def escalations(engine: Engine, ids: list[int]) -> dict[int, list[dt.datetime]]:
    """The times of each incident's escalation events."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT incident_id, at FROM incident_events WHERE action = 'escalate' "
                "AND incident_id = ANY(:ids) ORDER BY id"
            ),
            {"ids": ids},
        ).all()
    out: dict[int, list[dt.datetime]] = {i: [] for i in ids}
    for iid, at in rows:
        out[iid].append(at)
    return out


def wait_escalated(engine: Engine, ids: list[int], timeout_s: float) -> dict[int, list[dt.datetime]]:
    end = time.monotonic() + timeout_s
    while True:
        seen = escalations(engine, ids)
        if all(seen.values()) or time.monotonic() > end:
            return seen
        time.sleep(0.2)


def assert_once_in_time(
    engine: Engine, deadlines: dict[int, dt.datetime], within_s: float = FIRE_WITHIN_S, logs: str = ""
) -> None:
    seen = wait_escalated(engine, list(deadlines), within_s + 10)
    time.sleep(1.5)  # long enough for a second run to show
    seen = escalations(engine, list(deadlines))
    counts = {i: len(times) for i, times in seen.items()}
    assert counts == dict.fromkeys(deadlines, 1), f"escalations per incident: {counts}\n{logs[-3000:]}"
    late = {i: (seen[i][0] - d).total_seconds() for i, d in deadlines.items()}
    assert all(0 <= s <= within_s for s in late.values()), f"seconds after the deadline: {late}"


def _logs(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker*.log")))


def test_deadlines_fire_once_within_5_s_with_two_workers(jobs_db: str, engine: Engine, tmp_path: Path) -> None:
    with workers(jobs_db, tmp_path, n=2) as running:
        deadlines = dict(report(engine, 2 + k * 0.5, lon=120.901 + k * 0.002) for k in range(6))
        assert_once_in_time(engine, deadlines, logs=_logs(tmp_path))
        assert all(w.proc.poll() is None for w in running)
    with engine.connect() as conn:
        jobs = conn.execute(
            sa.text(
                "SELECT args->>'level', status FROM procrastinate_jobs "
                "WHERE task_name = 'gridmap:incident_deadline' AND CAST(args->>'incident_id' AS bigint) = ANY(:ids)"
            ),
            {"ids": list(deadlines)},
        ).all()
    # The grid deadlines' jobs are done (and deleted); each incident waits for its village deadline.
    assert sorted(jobs) == [("village", "todo")] * len(deadlines)


def test_a_worker_down_while_deadlines_pass_catches_up(jobs_db: str, engine: Engine, tmp_path: Path) -> None:
    deadlines = dict(report(engine, 1, lon=120.902 + k * 0.002) for k in range(3))
    time.sleep(3)
    assert escalations(engine, list(deadlines)) == {i: [] for i in deadlines}  # nobody runs jobs
    with workers(jobs_db, tmp_path):
        started = dt.datetime.now(dt.UTC)
        seen = wait_escalated(engine, list(deadlines), 15)
        assert all(len(t) == 1 for t in seen.values()), seen
        assert all((t[0] - started).total_seconds() <= FIRE_WITHIN_S for t in seen.values())
        assert_once_in_time(engine, deadlines, within_s=30)


def _job(engine: Engine, iid: int) -> tuple[str, int | None, int] | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT status, worker_id, attempts FROM procrastinate_jobs WHERE task_name = "
                "'gridmap:incident_deadline' AND args->>'incident_id' = CAST(:i AS text) AND args->>'level' = 'grid'"
            ),
            {"i": iid},
        ).one_or_none()
    return None if row is None else (str(row[0]), row[1], int(row[2]))


def _wait_job(engine: Engine, iid: int, ok, timeout_s: float) -> tuple[str, int | None, int] | None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    job = _job(engine, iid)
    while not ok(job) and time.monotonic() < end:
        time.sleep(0.2)
        job = _job(engine, iid)
    return job


def test_a_worker_killed_mid_job_leaves_it_to_another_worker_and_it_happens_once(
    jobs_db: str, engine: Engine, tmp_path: Path
) -> None:
    iid, deadline = report(engine, 2, lon=120.908)
    holder = engine.connect()
    tx = holder.begin()
    # The test holds the incident's row: the job starts, then waits inside its transaction.
    holder.execute(sa.text("SELECT id FROM incidents WHERE id = :i FOR UPDATE"), {"i": iid})
    first = Worker(jobs_db, tmp_path / "worker0.log")
    try:
        job = _wait_job(engine, iid, lambda j: j is not None and j[0] == "doing", 15)
        assert job is not None and job[0] == "doing", job
        time.sleep(0.5)  # inside the job body, waiting for the row
        first.kill()  # kill -9, mid-job
        second = Worker(jobs_db, tmp_path / "worker1.log")
        try:
            # The dead worker's heartbeat stops; after 3 s its job goes back to the queue and the
            # other worker takes it (and waits for the row in turn).
            retried = _wait_job(engine, iid, lambda j: j is not None and j[1] not in (None, job[1]), 30)
            assert retried is not None and retried[1] != job[1] and retried[2] >= 1, (job, retried)
            assert escalations(engine, [iid]) == {iid: []}  # nothing half-done by the killed worker
            tx.commit()  # let go of the row
            wait_escalated(engine, [iid], 15)
            time.sleep(1.5)
            seen = escalations(engine, [iid])
            assert len(seen[iid]) == 1, (seen, _logs(tmp_path))
            assert second.proc.poll() is None
        finally:
            second.stop()
        assert seen[iid][0] > deadline
    finally:
        if tx.is_active:
            tx.rollback()
        holder.close()
        first.stop()


def _outage(url: str, seconds: float) -> None:
    """The database refuses connections and loses its sessions for ``seconds``."""
    name = make_url(url).database
    admin = db.make_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            try:
                kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                conn.execute(sa.text(kill), {"n": name})
                time.sleep(seconds)
            finally:
                conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
    finally:
        admin.dispose()


def test_jobs_fire_once_across_a_database_outage(jobs_db: str, engine: Engine, tmp_path: Path) -> None:
    with workers(jobs_db, tmp_path) as (worker,):
        during = dict([report(engine, 2, lon=120.903)])  # due while the database is away
        after = dict([report(engine, 7, lon=120.905)])  # due after it is back
        _outage(jobs_db, 3)
        back = dt.datetime.now(dt.UTC)
        seen = wait_escalated(engine, list(during), 30)
        assert len(seen[next(iter(during))]) == 1, _logs(tmp_path)
        assert (seen[next(iter(during))][0] - back).total_seconds() <= 15  # the worker reconnected by itself
        assert_once_in_time(engine, after, logs=_logs(tmp_path))
        fresh = dict([report(engine, 2, lon=120.907)])
        assert_once_in_time(engine, fresh, logs=_logs(tmp_path))
        assert escalations(engine, list(during))[next(iter(during))].__len__() == 1
        assert worker.proc.poll() is None
    assert worker.proc.returncode == 0  # SIGTERM: a clean stop
