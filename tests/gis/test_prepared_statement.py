"""gis.core.prepared: a statement rewritten once to ``$n`` placeholders, run prepared on the server
through a raw cursor, with the results of the plain execution and the connection left as it was."""

from __future__ import annotations

import datetime as dt

import psycopg
import sqlalchemy as sa

from gis.core.prepared import execute_prepared, positional
from gis.incidents.intake import _INSERT, _INSERT_SQL

STATEMENT = sa.text(
    "SELECT CAST(:a AS int) + :b AS total, CAST(:a AS text) || (7)::text AS a_text, 'gridmap:not_a_param' AS literal, "
    "'50%' AS percent, ST_AsText(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) AS point, :at AS at"
)
PARAMS = {"a": 2, "b": 40, "lon": 120.9, "lat": 30.8, "at": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)}


def test_positional_numbers_each_name_once_and_leaves_casts_and_literals() -> None:
    p = positional(STATEMENT)
    assert p.names == ("a", "b", "lon", "lat", "at")
    assert p.sql.count("$1") == 2  # :a is used twice
    assert "(7)::text" in p.sql and "'gridmap:not_a_param'" in p.sql and "'50%'" in p.sql
    assert p.values(PARAMS) == (2, 40, 120.9, 30.8, PARAMS["at"])


def test_execute_prepared_gives_the_plain_results_and_restores_the_connection(connection) -> None:  # type: ignore[no-untyped-def]
    plain = connection.execute(STATEMENT, PARAMS).one()
    driver = connection.connection.driver_connection
    before = (driver.prepare_threshold, driver.cursor_factory)
    for _ in range(2):  # prepared on the first execution, reused on the second
        assert tuple(execute_prepared(connection, positional(STATEMENT), PARAMS).one()) == tuple(plain)
    assert (driver.prepare_threshold, driver.cursor_factory) == before
    assert driver.cursor_factory is not psycopg.RawCursor
    prepared = connection.execute(
        sa.text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%gridmap:not_a_param%'")
    ).scalar()
    assert prepared == 1
    # Statements with named parameters still run as before on the same connection.
    assert connection.execute(sa.text("SELECT :x + 1"), {"x": 1}).scalar() == 2


def test_the_intake_statement_keeps_every_parameter() -> None:
    assert set(_INSERT.names) == set(_INSERT_SQL.compile().params)
    assert f"${len(_INSERT.names)}" in _INSERT.sql and f"${len(_INSERT.names) + 1}" not in _INSERT.sql
