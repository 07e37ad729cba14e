"""The primary dies during sustained intake; the standby takes over and nothing acknowledged is lost.

A pg_auto_failover formation of its own (monitor, primary, one synchronous standby), made by
``gridmap db up --replicas 1`` for a temporary var folder and free ports (gis.core.replicas),
holds a database with the mini county. A real API
(uvicorn, 2 workers) serves it through the multi-host URL with ``target_session_attrs=read-write``.
A client posts incidents back to back, each with its own ``Idempotency-Key``, retrying a failed
post with the same key (the client of tests/api/test_db_outage.py). Mid-way the primary node is
stopped the way a crash stops it (``pg_autoctl stop --immediate``: postgres killed, no
checkpoint). Then:

* writes were answered 503 + ``Retry-After`` while the formation failed over, never 500 or a hang,
* intake continued by itself on the new primary, with no restart or reconfiguration of the API,
* every incident acknowledged with a 2xx is on the new primary, under the id the client was given,
* the retries created no second row for any key;
* tiles, reads that tolerate lag, were read on the standby (GRIDMAP_READ_DATABASE_URL with
  ``target_session_attrs=prefer-standby``) and are still served after the failover.

The downtime (first 503 to first 2xx after it) is printed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gis.core import db, replicas
from gis.core.cluster import ClusterError
from gis.people.keys import create_key
from tests.api.test_db_outage import Intake
from tests.conftest import api_server
from tests.failover_support import cli_formation, county_database, downtime, gridmap

TILE = "/tiles/grids/10/855/419.mvt"  # the tile holding the mini county
DATABASE = "gridmap_failover"


@pytest.fixture(scope="module")
def made() -> Iterator[tuple[replicas.Formation, dict[str, str]]]:
    """A formation made as a user makes one: ``gridmap db up --replicas 1`` (its own var folder)."""
    try:
        replicas.ensure_installed()
    except ClusterError as exc:
        pytest.skip(f"pg_auto_failover is not installed and cannot be installed here: {exc}")
    with cli_formation(DATABASE) as formation_and_env:
        yield formation_and_env


@pytest.fixture
def formation(made: tuple[replicas.Formation, dict[str, str]]) -> replicas.Formation:
    return made[0]


def _on_node(url: str, query: str) -> list[sa.Row[tuple[object, ...]]]:
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        with eng.connect() as conn:
            return list(conn.execute(sa.text(query)).all())
    finally:
        eng.dispose()


def _get_retrying(url: str, headers: dict[str, str], tries: int = 5) -> httpx.Response:
    """GET, retried after a 503 as its Retry-After asks (capped at 1 s here)."""
    for _ in range(tries - 1):
        resp = httpx.get(url, headers=headers, timeout=10)
        if resp.status_code != 503:
            return resp
        assert (resp.headers.get("retry-after") or "").isdigit(), "a 503 without Retry-After"
        time.sleep(min(float(resp.headers["retry-after"]), 1.0))
    return httpx.get(url, headers=headers, timeout=10)


def test_db_commands_describe_the_formation(made: tuple[replicas.Formation, dict[str, str]]) -> None:
    formation, env = made
    status = gridmap(env, "db", "status")
    assert "node1" in status and "primary" in status and "secondary" in status, status
    url = make_url(gridmap(env, "db", "url").strip())
    assert url.database == DATABASE and url.query["target_session_attrs"] == "read-write"
    assert url.query["port"] == ",".join(str(p) for p in formation.node_ports)
    migrated = _on_node(url.render_as_string(hide_password=False), "SELECT count(*) FROM alembic_version")
    assert migrated[0][0] == 1, "gridmap db up did not migrate the database"


def test_commits_wait_for_the_standby(formation: replicas.Formation) -> None:
    url = replicas.url(formation, "postgres")
    (names,) = _on_node(url, "SELECT current_setting('synchronous_standby_names')")
    assert str(names[0]).startswith("ANY 1 ("), f"commits are not synchronous: synchronous_standby_names={names[0]!r}"
    states = _on_node(url, "SELECT sync_state FROM pg_stat_replication")
    assert [s[0] for s in states] in (["quorum"], ["sync"]), f"the standby is not a synchronous one: {states}"
    ports = _on_node(replicas.url(formation, "postgres", read_only=True), "SELECT pg_is_in_recovery()")
    assert ports[0][0] is True, "prefer-standby did not reach the standby"


def test_intake_survives_the_primary_dying(formation: replicas.Formation, tmp_path: Path) -> None:
    url = county_database(formation, DATABASE)
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        api_key = create_key(conn, "reporter", "failover-client")
        viewer = {"X-API-Key": create_key(conn, "viewer", "failover-maps")}
    eng.dispose()
    reads = replicas.url(formation, DATABASE, read_only=True) + "&application_name=gridmap-reads"
    env = {"GRIDMAP_DATABASE_URL": url, "GRIDMAP_READ_DATABASE_URL": reads, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0"}
    with api_server(env, tmp_path / "uvicorn.log", workers=2) as base:
        intake = Intake(base, api_key)
        thread = threading.Thread(target=intake.run, name="intake", daemon=True)
        thread.start()
        try:
            time.sleep(3)
            before = len(intake.acknowledged)
            assert before > 0, f"no incident was acknowledged before the failover: {intake.attempts[-3:]}"
            old = replicas.primary(formation)
            assert old is not None
            # Tiles are read on the standby (a lagging read is harmless there).
            assert httpx.get(base + TILE, headers=viewer, timeout=10).status_code == 200
            standby = next(n for n in formation.names if n != old)
            on_standby = f"postgresql+psycopg://postgres@127.0.0.1:{formation.port(standby)}/postgres"
            query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gridmap-reads'"
            readers = _on_node(on_standby, query)
            assert readers[0][0] >= 1, "the tile was not read on the standby"
            killed = time.monotonic()
            replicas.stop_node(formation, old, immediate=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                a.status in (200, 201) and a.at > killed + 1 for a in list(intake.attempts)
            ):
                time.sleep(0.2)
            time.sleep(2)  # sustained intake on the new primary
            # A pooled connection to the dead primary fails once per worker (503, then the pool is
            # renewed): reads are retried as a client would.
            tile = _get_retrying(base + TILE, viewer)
            assert tile.status_code == 200, f"tiles after the failover: {tile.status_code} {tile.text[:200]}"
            found = _get_retrying(base + "/lookup?lon=120.905&lat=30.837", viewer)
            assert found.status_code == 200 and found.json()["grid"], found.text
        finally:
            intake.stop.set()
            thread.join(timeout=90)
    assert not thread.is_alive(), "the client hung"
    new = replicas.primary(formation)
    assert new not in (None, old), f"no failover: {replicas.status(formation.base)}"

    attempts = list(intake.attempts)
    failed = [a for a in attempts if a.status not in (200, 201)]
    assert failed, "no request failed: the primary was not killed during intake"
    bad = [a for a in failed if a.status != 503 or not (a.retry_after or "").isdigit()]
    assert not bad, f"failures other than 503 + Retry-After: {bad[:5]}"
    slow = [a for a in attempts if a.seconds > 10]
    assert not slow, f"requests hung for more than 10 s: {slow[:5]}"
    window = downtime([(a.at + a.seconds, a.status) for a in attempts], killed)
    assert window is not None, "intake did not continue after the failover"
    unacknowledged = {a.key for a in attempts} - set(intake.acknowledged)
    assert not unacknowledged, f"reports never acknowledged: {sorted(unacknowledged)[:5]}"

    query = (
        "SELECT idempotency_key, count(*), min(id), inet_server_port() FROM incidents "
        "WHERE idempotency_key LIKE 'outage-%' GROUP BY idempotency_key"
    )
    rows = _on_node(url, query)
    assert {int(r[3]) for r in rows} == {formation.port(str(new))}, "the check did not read the new primary"
    stored = {str(key): (int(count), int(first)) for key, count, first, _ in rows}
    missing = set(intake.acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged incidents are not on the new primary: {sorted(missing)[:5]}"
    duplicated = {k: c for k, (c, _) in stored.items() if c != 1}
    assert not duplicated, f"retries created duplicates: {duplicated}"
    wrong_id = {k: (i, stored[k][1]) for k, i in intake.acknowledged.items() if stored[k][1] != i}
    assert not wrong_id, f"the id acknowledged differs from the stored one: {wrong_id}"
    assert len(intake.acknowledged) > before
    print(
        f"\nfailover {old} -> {new}: writes unavailable {window[1] - window[0]:.1f} s (first 503 to first 2xx); "
        f"{len(attempts)} posts, {len(intake.acknowledged)} incidents, {len(failed)} answered 503 "
        f"({len({a.key for a in failed})} reports retried)"
    )
