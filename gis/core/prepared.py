"""A hot statement run as a statement prepared on the server, in PostgreSQL's own placeholders.

Engines turn psycopg's automatic preparing off (gis.core.db.make_engine: generic plans hurt
value-dependent queries); a statement whose plan does not depend on its values, run hundreds of
times a second (live intake), is prepared on purpose: ``execute_prepared`` lowers psycopg's
threshold for its one execution. psycopg also rewrites a statement's ``%(name)s`` placeholders to
``$1, $2 ...`` on every execution and caches that rewrite only for statements up to 4 kB; the
intake statement (with dispatch) is twice that, and the rewrite cost ~0.15 ms of Python per
report. ``positional`` does the rewrite once, and the statement runs through a raw cursor
(``$n`` placeholders, parameters in order), so there is nothing left to rewrite. It still goes
through SQLAlchemy, so a lost connection is reported and handled as for any other statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.engine import Connection, CursorResult

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@dataclass(frozen=True)
class Positional:
    """A statement in ``$n`` placeholders, and the parameter names in their order."""

    sql: str
    names: tuple[str, ...]

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(params[name] for name in self.names)


def positional(statement: sa.TextClause) -> Positional:
    """``statement`` (``:name`` parameters) with PostgreSQL's ``$n`` placeholders: SQLAlchemy
    finds the parameters (its rules for ``::`` casts and quoted text), then each distinct name
    becomes one number, in order of first use."""
    compiled = str(statement.compile(dialect=pg_psycopg.dialect()))
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"  # psycopg's escape of a literal percent sign
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return Positional(_PLACEHOLDER.sub(number, compiled), tuple(names))


def execute_prepared(conn: Connection, statement: Positional, params: Mapping[str, Any]) -> CursorResult[Any]:
    """Run ``statement`` with ``params`` (by name) as a statement prepared on the server (psycopg
    prepares it on a connection's first execution and reuses it after), in whatever transaction
    ``conn`` is in."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)  # a live, checked-out psycopg connection
    threshold, factory = driver.prepare_threshold, driver.cursor_factory
    driver.prepare_threshold = 0
    driver.cursor_factory = psycopg.RawCursor
    try:
        return conn.exec_driver_sql(statement.sql, statement.values(params))
    finally:
        driver.prepare_threshold = threshold
        driver.cursor_factory = factory
