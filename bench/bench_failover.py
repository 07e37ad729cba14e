"""Failover downtime: how long intake is refused when the primary dies, against a plain restart.

    .venv/bin/python bench/bench_failover.py [--kills 3] [--restarts 3]

What it does:
1. Starts a throwaway pg_auto_failover formation (monitor, primary, one synchronous standby; on
   free ports in a folder under /tmp: gis.core.replicas) and a database on it with the mini test
   county; the API (uvicorn, 2 workers) serves it through the multi-host URL
   (``target_session_attrs=read-write``).
2. A client posts incidents back to back, each with its own ``Idempotency-Key``, retrying a
   refused post with the same key (the client of tests/api/test_db_outage.py).
3. ``--kills`` times: the primary is stopped as a crash stops it (``pg_autoctl stop --immediate``),
   the standby takes over; the downtime is the time from the first 503 to the first 2xx after it.
   The dead node is then started again, rejoins as the standby, and the next kill follows.
4. Peer, same run, same client and server set-up: a single-node cluster (gis.core.cluster, as
   ``gridmap db up`` runs it) crashed (``pg_ctl stop -m immediate``) and restarted at once, as a
   supervisor would, ``--restarts`` times. No standby: this is the best a single node does when
   its server process dies; when its machine dies, the downtime is the time to repair it.
5. Checks that every acknowledged incident is stored once, then prints median and max downtime.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boundaries.generations import publish_layers  # noqa: E402
from boundaries.sample import build_mini_county  # noqa: E402
from gis.core import cluster, db, replicas  # noqa: E402
from gis.core.settings import Settings  # noqa: E402
from gis.people.keys import create_key  # noqa: E402
from tests.api.test_db_outage import Intake  # noqa: E402
from tests.conftest import api_server  # noqa: E402
from tests.failover_support import county_database, downtime, free_ports, temp_formation  # noqa: E402


def _measure(url: str, log: Path, outages: int, outage: Callable[[], None], settle: Callable[[], None]) -> list[float]:
    """Run intake against ``url``, cause ``outages`` outages; the downtime of each, in seconds."""
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        key = create_key(conn, "reporter", f"bench-failover-{time.time_ns()}")
    eng.dispose()
    env = {"GRIDMAP_DATABASE_URL": url, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0"}
    figures: list[float] = []
    with api_server(env, log, workers=2) as base:
        intake = Intake(base, key)
        thread = threading.Thread(target=intake.run, daemon=True)
        thread.start()
        try:
            for _ in range(outages):
                time.sleep(3)
                since = time.monotonic()
                outage()
                deadline = since + 120
                window = None
                while window is None and time.monotonic() < deadline:
                    time.sleep(0.5)
                    window = downtime([(a.at + a.seconds, a.status) for a in list(intake.attempts)], since)
                if window is None:
                    raise SystemExit(f"intake did not resume within 120 s: {intake.attempts[-3:]}")
                figures.append(window[1] - window[0])
                print(f"  writes refused for {figures[-1]:.2f} s", flush=True)
                settle()
        finally:
            intake.stop.set()
            thread.join(timeout=90)
    _check_stored(url, intake)
    return figures


def _check_stored(url: str, intake: Intake) -> None:
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    with eng.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT idempotency_key, count(*) FROM incidents WHERE idempotency_key LIKE 'outage-%' GROUP BY 1")
        ).all()
    eng.dispose()
    stored = {str(k): int(c) for k, c in rows}
    missing = set(intake.acknowledged) - set(stored)
    duplicated = [k for k, c in stored.items() if c > 1]
    failed = sum(1 for a in intake.attempts if a.status not in (200, 201))
    print(
        f"  {len(intake.acknowledged)} incidents acknowledged, {failed} posts refused (retried), "
        f"{len(missing)} acknowledged but missing, {len(duplicated)} duplicated"
    )
    if missing or duplicated:
        raise SystemExit("acknowledged incidents were lost or duplicated")


def failover_run(kills: int, work: Path) -> list[float]:
    with temp_formation(standbys=1) as formation:
        url = county_database(formation, "gridmap_bench_failover")
        victim: list[str] = []

        def kill() -> None:
            name = replicas.primary(formation)
            assert name is not None
            victim.append(name)
            replicas.stop_node(formation, name, immediate=True)

        def rejoin() -> None:
            replicas.start_node(formation, victim[-1])
            replicas.wait_healthy(formation)

        print(f"failover: formation in {formation.base}, {kills} kills of the primary", flush=True)
        return _measure(url, work / "uvicorn-failover.log", kills, kill, rejoin)


def restart_run(restarts: int, work: Path) -> list[float]:
    folder = Path(tempfile.mkdtemp(prefix="gridmap-single-", dir="/tmp"))
    if cluster._is_root():
        shutil.chown(folder, cluster.OWNER, cluster.OWNER)
    settings = Settings(var_dir=folder, pg_port=free_ports(1), database_url=None)
    try:
        cluster.start(settings)
        url = cluster.url(settings, "gridmap_bench_single")
        db.ensure_database(url)
        db.migrate(url)
        _publish_county(url)
        bindir = cluster.ensure_installed()
        data = str(cluster.layout(settings).data)

        def crash_and_restart() -> None:
            cluster._run([str(bindir / "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"])
            cluster.start(settings)

        print(f"peer: single node in {folder}, {restarts} crashes with immediate restart", flush=True)
        return _measure(url, work / "uvicorn-single.log", restarts, crash_and_restart, lambda: None)
    finally:
        cluster.stop(settings)
        shutil.rmtree(folder, ignore_errors=True)


def _publish_county(url: str) -> None:
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        publish_layers(
            conn, build_mini_county(), note="bench", author="bench", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
    eng.dispose()


def _summary(name: str, figures: list[float]) -> str:
    each = ", ".join(f"{f:.1f}" for f in figures)
    return f"{name:<34} median {statistics.median(figures):5.1f} s   max {max(figures):5.1f} s   ({each})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3, help="how many times the primary is killed")
    parser.add_argument("--restarts", type=int, default=3, help="how many times the single-node peer is crashed")
    args = parser.parse_args()
    os.environ.pop("GRIDMAP_DATABASE_URL", None)  # each run passes its own to the API
    work = Path(tempfile.mkdtemp(prefix="gridmap-bench-failover-"))
    try:
        failover = failover_run(args.kills, work)
        single = restart_run(args.restarts, work)
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"a command hung: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(_summary("failover (primary killed)", failover))
    print(_summary("peer: single node, crash + restart", single))


if __name__ == "__main__":
    main()
