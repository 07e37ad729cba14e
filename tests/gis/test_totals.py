"""gis.incidents.totals: exact and in the caller's transaction below the cap; above it, reused briefly per filter."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.incidents.totals import TotalCounter


def _table(conn: Connection, rows: int) -> None:
    conn.execute(sa.text("CREATE TEMP TABLE nums ON COMMIT DROP AS SELECT generate_series(1, :n) AS n"), {"n": rows})


def _add(conn: Connection, rows: int) -> None:
    conn.execute(sa.text("INSERT INTO nums SELECT -generate_series(1, :n)"), {"n": rows})


def test_small_totals_are_exact_and_fresh(connection: Connection) -> None:
    _table(connection, 8)
    counter = TotalCounter(exact_up_to=10, ttl_s=3600)
    assert counter.count(connection, "nums WHERE n > :k", {"k": 2}) == 6
    _add(connection, 2)
    assert counter.count(connection, "nums WHERE TRUE", {}) == 10  # at the cap: still exact
    _add(connection, 1)
    assert counter.count(connection, "nums WHERE n > :k", {"k": 2}) == 6
    assert counter.count(connection, "nums WHERE n < :k", {"k": 0}) == 3


def test_large_totals_are_reused_per_filter_until_they_expire(connection: Connection) -> None:
    _table(connection, 50)
    counter = TotalCounter(exact_up_to=10, ttl_s=3600)
    assert counter.count(connection, "nums WHERE n > :k", {"k": 5}) == 45
    _add(connection, 20)
    # Same filter and values: the count of a moment ago.
    assert counter.count(connection, "nums WHERE n > :k", {"k": 5}) == 45
    # Other values or another filter are counted on their own.
    assert counter.count(connection, "nums WHERE n > :k", {"k": 6}) == 44
    assert counter.count(connection, "nums WHERE n <> ALL(:skip)", {"skip": [1, 2]}) == 68
    # Expired: counted again.
    fresh = TotalCounter(exact_up_to=10, ttl_s=0)
    assert fresh.count(connection, "nums WHERE n > :k", {"k": 5}) == 45
    _add(connection, 5)
    assert fresh.count(connection, "nums WHERE TRUE", {}) == 75


def test_the_cache_stays_bounded(connection: Connection) -> None:
    _table(connection, 30)
    counter = TotalCounter(exact_up_to=5, ttl_s=3600, max_entries=3)
    for k in range(10):
        assert counter.count(connection, "nums WHERE n > :k", {"k": k}) == 30 - k
    assert len(counter._cache) == 3
