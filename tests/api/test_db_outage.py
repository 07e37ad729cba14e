"""The database goes away during sustained intake, and nothing is lost.

A real API (uvicorn, 2 workers) runs on a throwaway database of the local cluster. A client posts
incidents without pause, each with its own ``Idempotency-Key``, and retries a failed post with the
same key, as a well-behaved integration does. Mid-way the PostgreSQL cluster is stopped for about
three seconds and started again. Then:

* requests during the outage were answered 503 with ``Retry-After`` (no 500, no hang),
* intake recovered by itself once the database was back,
* every incident acknowledged with a 2xx is in the database, under the id the client was given,
* the retries created no second row for any key.

The deadlines run beside it, as issue 16 asks: two ``gridmap worker`` processes run the jobs.
Every report is offered at intake to a grid worker who never accepts it; its handling deadline
is ``DEADLINE_S`` seconds away and the offer's acceptance deadline ``ACCEPT_S`` (each escalates it
a level; tests/outage_jobs.py). Before the outage one worker is killed (kill -9) in the middle
of deadline jobs, and another is started. Once intake has stopped and no deadline is due:

* every acknowledged incident's handling-deadline job and its offer's acceptance-deadline job
  succeeded, once (a ledger of finished jobs: the worker deletes a job once it succeeded),
* each incident escalated from each level at most once, and from the grid exactly once,
* nothing pending is left past its deadline below the county centre, no offer past its own,
* the jobs the killed worker was running were retried and succeeded once.

The cluster is shared by everything else that runs on this machine, so the outage is kept short
and the cluster is started again whatever happens. ``GRIDMAP_OUTAGE_MODE=database`` narrows the
outage to the throwaway database (its sessions are killed and new ones refused) for runs beside
other users of the cluster; the default, ``restart``, stops the whole cluster as the issue asks.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from boundaries.generations import publish_layers
from boundaries.sample import X0, XM, Y0, YM, build_mini_county
from gis.core import cluster, db
from gis.core.settings import get_settings
from gis.people.keys import create_key
from tests.conftest import api_server
from tests.outage_jobs import (
    DEADLINE_ENV,
    Workers,
    assert_deadlines_fired_once,
    install_ledger,
    kill_a_worker_mid_job,
    seat_grid_worker,
)

# It stops the cluster every other test uses: `make test` runs it on its own.
pytestmark = pytest.mark.exclusive

OUTAGE_S = 3.0
MODE = os.environ.get("GRIDMAP_OUTAGE_MODE", "restart")
REQUEST_TIMEOUT_S = 15.0


def _local_cluster_or_skip() -> None:
    if os.environ.get("GRIDMAP_TEST_DATABASE_URL") or not get_settings().uses_local_cluster:
        pytest.skip(
            "the outage test stops the LOCAL PostgreSQL cluster; GRIDMAP_DATABASE_URL (or "
            "GRIDMAP_TEST_DATABASE_URL) points at another server, which a test must not restart"
        )
    if MODE not in ("restart", "database"):
        pytest.fail(f"GRIDMAP_OUTAGE_MODE={MODE!r}: expected 'restart' or 'database'")


@pytest.fixture
def outage_db(database_url: str) -> Iterator[str]:
    """A committed database of its own with the mini county, migrated; dropped at the end."""
    _local_cluster_or_skip()
    url = make_url(database_url)
    name = f"{url.database}_outage"
    scratch = url.set(database=name).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    db.ensure_database(scratch)
    db.migrate(scratch)
    eng = db.make_engine(scratch, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        publish_layers(
            conn, build_mini_county(), note="outage test", author="tests",
            published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        )  # fmt: skip
        seat_grid_worker(conn)  # the holder intake offers every report to
        install_ledger(conn)
    eng.dispose()
    try:
        yield scratch
    finally:
        cluster.start(get_settings())  # whatever happened, leave the cluster running
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def server(outage_db: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """uvicorn with 2 workers on the outage database; yields (base URL, reporter key)."""
    eng = db.make_engine(outage_db, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        key = create_key(conn, "reporter", "outage-client")
    eng.dispose()
    env = {
        "GRIDMAP_DATABASE_URL": outage_db,
        "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0",
        **DEADLINE_ENV,
    }
    with api_server(env, tmp_path / "uvicorn.log", workers=2) as base:
        yield base, key


@pytest.fixture
def job_workers(outage_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workers, int]]:
    """Two workers; yields them and the first one's procrastinate worker id."""
    for name, value in DEADLINE_ENV.items():  # the workers route escalations: same acceptance deadlines
        monkeypatch.setenv(name, value)
    pool = Workers(outage_db, tmp_path)
    eng = db.make_engine(outage_db, pool_size=1, max_overflow=0)
    try:
        pool.start()
        first = None
        end = time.monotonic() + 15
        while first is None and time.monotonic() < end:
            with eng.connect() as conn:
                first = conn.execute(sa.text("SELECT min(id) FROM procrastinate_workers")).scalar()
            time.sleep(0.1)
        assert first is not None, f"the first worker did not register: {pool.log_tail()}"
        pool.start()
        yield pool, int(first)
    finally:
        eng.dispose()
        for worker in pool.started:
            worker.stop()


@dataclass
class Attempt:
    key: str
    at: float  # monotonic
    seconds: float
    status: int | None  # None: no HTTP answer at all
    retry_after: str | None = None
    body: str = ""


@dataclass
class Intake:
    """A client posting incidents back to back; a failed post is retried with the same key."""

    base: str
    api_key: str
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: dict[str, int] = field(default_factory=dict)  # idempotency key -> incident id
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"X-API-Key": self.api_key}
        with httpx.Client(base_url=self.base, timeout=REQUEST_TIMEOUT_S, headers=headers) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                key = f"outage-{uuid.uuid4()}"
                body = {
                    # In grid 1 (town 1, village 1, west half), where a grid worker is on duty.
                    "lon": X0 + (XM - X0) / 2 * (0.05 + 0.9 * ((n * 37) % 100) / 100),
                    "lat": Y0 + (YM - Y0) * (0.05 + 0.9 * ((n * 61) % 100) / 100),
                    "category": "dispute",
                    "source": "grid_patrol",
                    "description": f"outage test report {n}",
                }
                self._post_until_acknowledged(client, key, body)

    def _post_until_acknowledged(self, client: httpx.Client, key: str, body: dict[str, object]) -> None:
        # Retries continue after ``stop`` until the report is acknowledged: a client does not
        # drop a report because the operator ends the run.
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            start = time.monotonic()
            try:
                resp = client.post("/incidents", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as exc:
                self.attempts.append(Attempt(key, start, time.monotonic() - start, None, body=repr(exc)))
                time.sleep(0.2)
                continue
            attempt = Attempt(key, start, time.monotonic() - start, resp.status_code, resp.headers.get("retry-after"))
            self.attempts.append(attempt)
            if resp.status_code in (200, 201):
                self.acknowledged[key] = int(resp.json()["id"])
                return
            attempt.body = resp.text[:300]
            if resp.status_code != 503:
                return  # anything but "retry later" is a finding, reported by the assertions
            time.sleep(min(float(resp.headers.get("retry-after") or 1), 0.5))


def _outage(database: str) -> tuple[float, float]:
    """Take the database away for OUTAGE_S seconds; return (went down, came back) monotonic times."""
    settings = get_settings()
    name = make_url(database).database
    if MODE == "restart":
        down = time.monotonic()
        cluster.stop(settings)
        time.sleep(OUTAGE_S)
        cluster.start(settings)
        return down, time.monotonic()
    admin = db.make_engine(make_url(database).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            down = time.monotonic()
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            conn.execute(sa.text(kill), {"n": name})
            time.sleep(OUTAGE_S)
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
            return down, time.monotonic()
    finally:
        admin.dispose()


def test_intake_survives_a_database_restart(
    server: tuple[str, str], outage_db: str, job_workers: tuple[Workers, int]
) -> None:
    base, api_key = server
    pool, first_worker = job_workers
    intake = Intake(base, api_key)
    thread = threading.Thread(target=intake.run, name="intake", daemon=True)
    thread.start()
    try:
        time.sleep(3)
        before = len(intake.acknowledged)
        assert before > 0, f"no incident was acknowledged before the outage: {intake.attempts[-3:]}"
        killed = kill_a_worker_mid_job(outage_db, list(intake.acknowledged.values()), pool, first_worker)
        down, back = _outage(outage_db)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            a.status in (200, 201) and a.at > back for a in list(intake.attempts)
        ):
            time.sleep(0.2)
        time.sleep(2)  # a little sustained intake after recovery
    finally:
        intake.stop.set()
        thread.join(timeout=90)
    assert not thread.is_alive(), "the client hung"

    attempts = list(intake.attempts)
    failed = [a for a in attempts if a.status not in (200, 201)]
    during = [a for a in attempts if down <= a.at <= back]
    recovered = [a for a in attempts if a.at > back and a.status in (200, 201)]

    # During the outage the service answered, and answered "retry later".
    assert during, "no request was sent during the outage"
    assert any(a.status == 503 for a in during), f"no 503 during the outage: {during[:5]}"
    bad = [a for a in failed if a.status != 503 or not (a.retry_after or "").isdigit()]
    assert not bad, f"failures other than 503 + Retry-After: {bad[:5]}"
    slow = [a for a in attempts if a.seconds > 10]
    assert not slow, f"requests hung for more than 10 s: {slow[:5]}"
    # It recovered by itself, and every report was acknowledged in the end.
    assert recovered, "intake did not recover after the database came back"
    unacknowledged = {a.key for a in attempts} - set(intake.acknowledged)
    assert not unacknowledged, f"reports never acknowledged: {sorted(unacknowledged)[:5]}"

    eng = db.make_engine(outage_db, pool_size=1, max_overflow=0)
    try:
        with eng.connect() as conn:
            query = (
                "SELECT idempotency_key, count(*), min(id) FROM incidents "
                "WHERE idempotency_key LIKE 'outage-%' GROUP BY idempotency_key"
            )
            rows = conn.execute(sa.text(query)).all()
    finally:
        eng.dispose()
    stored = {key: (count, first) for key, count, first in rows}
    missing = set(intake.acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged incidents are not in the database: {sorted(missing)[:5]}"
    duplicated = {k: c for k, (c, _) in stored.items() if c != 1}
    assert not duplicated, f"retries created duplicates: {duplicated}"
    wrong_id = {k: (i, stored[k][1]) for k, i in intake.acknowledged.items() if stored[k][1] != i}
    assert not wrong_id, f"the id acknowledged differs from the stored one: {wrong_id}"
    assert len(intake.acknowledged) > before
    retried = len({a.key for a in failed})
    print(
        f"\noutage ({MODE}) {back - down:.1f} s: {len(attempts)} posts, {len(intake.acknowledged)} incidents, "
        f"{len(failed)} answered 503 ({retried} reports retried), first 2xx after recovery "
        f"{min(a.at for a in recovered) - back:.2f} s after the database was back"
    )
    # The deadlines: the workers (one killed mid-job before the outage) fired each once.
    print(assert_deadlines_fired_once(outage_db, sorted(intake.acknowledged.values()), killed, pool))
    # Only the worker killed on purpose has ended; the others (and its replacement) still run.
    assert sum(w.proc.poll() is not None for w in pool.started) == 1, f"a worker died: {pool.log_tail()}"
