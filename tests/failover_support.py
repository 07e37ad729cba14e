"""A throwaway pg_auto_failover formation and a county database on it, for the failover test
(tests/api/test_failover.py) and benchmark (bench/bench_failover.py).

The formation lives in a fresh folder under /tmp (the server's OS user must reach it: pytest's
own tmp_path is private to root) on free ports, and is stopped and removed at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import cluster, db, replicas

ROOT = Path(__file__).resolve().parents[1]


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1."""
    rng = random.Random()
    for _ in range(200):
        # Below the kernel's ephemeral range (32768+), where outgoing connections take ports.
        first = rng.randrange(20_000, 32_000)
        if all(cluster._port_free(first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports found")


@contextmanager
def temp_formation(standbys: int = 1, detect_ms: int = 3000) -> Iterator[replicas.Formation]:
    """A running formation (monitor, primary, ``standbys`` standbys); raises ClusterError when
    pg_auto_failover cannot be installed."""
    replicas.ensure_installed()
    base = Path(tempfile.mkdtemp(prefix="gridmap-pgaf-", dir="/tmp"))
    try:
        yield replicas.create(base, free_ports(standbys + 2), standbys, detect_ms=detect_ms)
    finally:
        with suppress(cluster.ClusterError):
            replicas.down(base)
        shutil.rmtree(base, ignore_errors=True)


def gridmap(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run the ``gridmap`` command with ``env`` over this process's environment; its output."""
    script = "import sys, api.cli; sys.argv = ['gridmap', *sys.argv[1:]]; api.cli.main()"
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"gridmap {' '.join(args)} failed: {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    return proc.stdout


@contextmanager
def cli_formation(database: str, standbys: int = 1) -> Iterator[tuple[replicas.Formation, dict[str, str]]]:
    """``gridmap db up --replicas N`` for a fresh var folder under /tmp and free ports; yields the
    formation and the environment that names it. ``gridmap db down`` at the end."""
    var = Path(tempfile.mkdtemp(prefix="gridmap-var-", dir="/tmp"))
    if cluster._is_root():
        shutil.chown(var, cluster.OWNER, cluster.OWNER)  # the server's OS user must reach var/pgaf
    env = {
        "GRIDMAP_DATABASE_URL": "",  # empty: the local formation
        "GRIDMAP_READ_DATABASE_URL": "",
        "GRIDMAP_VAR_DIR": str(var),
        "GRIDMAP_FAILOVER_PORT": str(free_ports(standbys + 2)),
        "GRIDMAP_PG_DATABASE": database,
    }
    try:
        out = gridmap(env, "db", "up", "--replicas", str(standbys))
        formation = replicas.load(var / "pgaf")
        if formation is None:
            raise RuntimeError(f"gridmap db up --replicas made no formation: {out}")
        yield formation, env
    finally:
        with suppress(RuntimeError, subprocess.TimeoutExpired):
            gridmap(env, "db", "down")
        with suppress(cluster.ClusterError):
            replicas.down(var / "pgaf")  # when the command failed half-way
        shutil.rmtree(var, ignore_errors=True)


def county_database(formation: replicas.Formation, name: str) -> str:
    """A migrated database on the formation with the mini county published; returns its URL."""
    url = replicas.url(formation, name)
    db.ensure_database(url)
    db.migrate(url)
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        with eng.begin() as conn:
            publish_layers(
                conn, build_mini_county(), note="failover test", author="tests",
                published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
    finally:
        eng.dispose()
    return url


def downtime(statuses: list[tuple[float, int | None]], since: float) -> tuple[float, float] | None:
    """(first failure at or after ``since``, first success after it) from (time, HTTP status)
    pairs in time order; None when no request failed."""
    first_failure = next((at for at, status in statuses if at >= since and status not in (200, 201)), None)
    if first_failure is None:
        return None
    back = next((at for at, status in statuses if at > first_failure and status in (200, 201)), None)
    return (first_failure, back) if back is not None else None
