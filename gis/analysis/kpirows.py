"""The one pass behind ``gis.analysis.kpis``: the figures of each (window, group) of the incidents,
and the county total of each window, from a single hashed aggregate.

Why this shape (issue 18, measured on the demo year by grid with EXPLAIN ANALYZE): the former
query computed the three percentile pairs with ``percentile_cont`` in a GroupAggregate over
GROUPING SETS (window, group) and (window). Ordered-set aggregates force sort-based grouping, so
every row of the year was sorted by (window, group code) under the database's collation, then each
value was put into a per-group sort a second time for the total row; and ``extract(epoch ...)``
(numeric since PostgreSQL 14) was evaluated three times per row. Here the database hashes the rows
into (window, group), counts as before, and hands each group's timestamps over as packed arrays
(array_send: 8 bytes and a length per value, no per-row arithmetic in the database); the
durations are their differences in microseconds, exact, and the minutes (hours) these divided by
60e6 (3.6e9) in one rounding, as the former numeric ``extract(epoch ...) / 60.0`` gave them. The
totals are the sums of the groups' counts and the percentiles of all their durations together
(the groups partition the cohort, so this is the same set of values). The percentiles are
interpolated as ``percentile_cont`` does (``_percentiles``), so the figures are the former ones.

Identical windows (the previous period and the same dates a year earlier coincide for a calendar
year) are counted once and answered for both names.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.spatial.areas import Conn

CLOSE_LEVELS = ("grid", "village", "town", "county")
# The durations whose median and P90 are KPIs: name, column, microseconds per unit (minutes, hours).
DURATIONS = (("accept", "accepted_at", 60e6), ("arrive", "on_scene_at", 60e6), ("handle", "handled_at", 3600e6))
QUANTILES = (0.5, 0.9)
COUNTS = (
    "reported",
    "rejected",
    "closed",
    "closed_on_time",
    *(f"closed_at_{lv}" for lv in CLOSE_LEVELS),
    "escalated",
    "reopened",
    "callbacks",
    "satisfied",
)
# array_send's layout (PostgreSQL's binary array format): a header of ndim, has-nulls flag and
# element type, a (length, lower bound) pair per dimension, then each element as its length and
# its bytes, all big-endian. The arrays here are one-dimensional timestamptz (oid 1184: int64
# microseconds) without NULLs: a missing time is sent as -infinity (the int64 minimum).
_HEADER = struct.Struct(">iiiii")  # ndim 1 (array_agg over no rows gives NULL, not {})
_ELEMENT = np.dtype([("length", ">i4"), ("value", ">i8")])
_TIMESTAMPTZ = 1184
_MISSING = np.iinfo(np.int64).min
IntArray = npt.NDArray[np.int64]
Percentiles = list[float] | None
Fetch = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


def _micros(blob: bytes) -> IntArray:
    """The values of an array_send timestamptz[] blob, as int64 microseconds (a view of it)."""
    ndim, has_nulls, oid, count, _ = _HEADER.unpack_from(blob)
    items = np.frombuffer(blob, _ELEMENT, offset=_HEADER.size)
    if (ndim, has_nulls, oid) != (1, 0, _TIMESTAMPTZ) or len(items) != count:
        raise ValueError("unexpected array layout from the KPI query")
    return items["value"]


def _interpolate(ordered: IntArray, start: IntArray, n: IntArray, unit: float) -> list[Percentiles]:
    """percentile_cont(ARRAY[0.5, 0.9]) of each run ordered[start:start + n] (sorted ascending), in
    ``unit``: for each fraction p, the value at position p * (n - 1), between its neighbours
    interpolated with PostgreSQL's own formula (lo + (hi - lo) * fraction), in float8 as there.
    Dividing the microseconds by ``unit`` keeps their order, so the order statistics are the same."""
    columns = []
    for p in QUANTILES:
        position = p * (np.maximum(n, 1) - 1)
        low = np.floor(position).astype(np.int64)
        high = np.ceil(position).astype(np.int64)
        last = len(ordered) - 1  # an empty run (n = 0) points anywhere: its answer is None
        first = ordered[np.minimum(start + low, last)] / unit
        second = ordered[np.minimum(start + high, last)] / unit
        columns.append(np.where(low == high, first, first + (second - first) * (position - low)))
    return [None if size == 0 else [float(c[g]) for c in columns] for g, size in enumerate(n.tolist())]


def _percentiles(durations: IntArray, group: IntArray, groups: int, unit: float) -> list[Percentiles]:
    """The percentiles (``_interpolate``) of each group's durations (microseconds; ``group`` says
    whose, 0 .. groups - 1), with one sort of all of them: a group's rank and its duration packed in
    one int64 key when they fit (else a lexsort)."""
    if len(durations) == 0:
        return [None] * groups
    low = int(durations.min())
    span = int(durations.max()) - low + 1
    if span * groups < 2**62:
        keys = np.sort(group * span + (durations - low))
        ordered, n = keys % span + low, np.bincount(keys // span, minlength=groups)
    else:
        order = np.lexsort((durations, group))
        ordered, n = durations[order], np.bincount(group, minlength=groups)
    start = np.concatenate(([0], np.cumsum(n)[:-1]))
    return _interpolate(ordered, start, n, unit)


def _total_percentiles(durations: IntArray, unit: float) -> Percentiles:
    """The percentiles of all the durations: only the needed order statistics selected (linear)."""
    n = len(durations)
    if n == 0:
        return None
    needed = sorted({int(np.floor(p * (n - 1))) for p in QUANTILES} | {int(np.ceil(p * (n - 1))) for p in QUANTILES})
    return _interpolate(np.partition(durations, needed), np.zeros(1, np.int64), np.array([n]), unit)[0]


def _sql(windows: list[tuple[str, str, str]], key: str, join: str, where: str) -> str:
    levels = ", ".join(
        f"count(*) FILTER (WHERE i.status = 'closed' AND i.closed_level = '{lv}') AS closed_at_{lv}"
        for lv in CLOSE_LEVELS
    )
    times = ", ".join(
        f"array_send(array_agg(coalesce(i.{column}, '-infinity'))) AS {name}_at" for name, column, _ in DURATIONS
    )
    values = ", ".join(f"('{name}', CAST(:{s} AS timestamptz), CAST(:{e} AS timestamptz))" for name, s, e in windows)
    group = "" if key == "NULL" else f", {key}"
    # Only constants and the filter's own text (values bound) are formatted in.
    return f"""
        WITH w(win, ws, we) AS (VALUES {values})
        SELECT w.win, CAST({key} AS text) AS key,
               count(*) AS reported,
               count(*) FILTER (WHERE i.status = 'rejected') AS rejected,
               count(*) FILTER (WHERE i.status = 'closed') AS closed,
               count(*) FILTER (WHERE i.status = 'closed' AND i.closed_at <= i.deadline_at) AS closed_on_time,
               {levels},
               count(*) FILTER (WHERE i.escalated_at IS NOT NULL) AS escalated,
               count(ro.incident_id) AS reopened,
               count(cb.result) AS callbacks,
               count(*) FILTER (WHERE cb.result IN ('satisfied', 'basically_satisfied')) AS satisfied,
               array_send(array_agg(i.reported_at)) AS reported_at, {times}
        FROM incidents i
        JOIN w ON i.reported_at >= w.ws AND i.reported_at < w.we
        {join}
        -- Callbacks and reopenings are few beside the incidents: joined as small hashed sets, not
        -- looked up per incident.
        LEFT JOIN (
            SELECT DISTINCT ON (c.incident_id) c.incident_id, c.result FROM incident_callbacks c
            ORDER BY c.incident_id, c.at DESC, c.id DESC) cb ON cb.incident_id = i.id
        LEFT JOIN (
            SELECT DISTINCT e.incident_id FROM incident_events e WHERE e.action = 'reopen') ro ON ro.incident_id = i.id
        -- The windows' outer bounds once more, as constants: a partitioned or foreign incidents
        -- table (gis.shards' coordinator) can prune and push them down; the join above cannot.
        WHERE {where} AND i.reported_at >= :kpi_lo AND i.reported_at < :kpi_hi
        GROUP BY w.win{group}
    """  # noqa: S608


def _fetch_binary(conn: Conn, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``sql`` in PostgreSQL's binary format, on the caller's connection and in its
    transaction: the packed arrays then arrive as they are, where the text format would send them
    hex-encoded (twice the bytes, encoded by the server and decoded here; measured on 1M incidents:
    ~0.25 s of database CPU and ~0.1 s here). SQLAlchemy has no switch for psycopg's binary results,
    so the statement is compiled by SQLAlchemy (its parameter style) and run by the driver."""
    connection = conn.connection() if isinstance(conn, Session) else conn
    compiled = sa.text(sql).compile(dialect=connection.dialect)
    driver = connection.connection.driver_connection
    with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        cursor.execute(compiled.string, params)
        names = [column.name for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def window_rows(
    conn: Conn,
    windows: dict[str, tuple[dt.datetime, dt.datetime]],
    key: str,
    join: str,
    where: str,
    params: dict[str, Any],
    fetch: Fetch | None = None,
) -> dict[tuple[str, str | None], dict[str, Any]]:
    """{(window name, group key): counts (``COUNTS``) and ``<duration>_pcts`` ([p50, p90] or None)}
    for every group present in a window, and under the key None the window's total. ``key`` is the
    grouping key's SQL (``NULL``: totals only), ``join`` the join it needs, ``where`` and ``params``
    the filter's. ``fetch`` runs the statement and returns its rows (default: on ``conn``, binary);
    gis.shards.fanout runs it on every shard at once, the rows of all together being the province's."""
    distinct: dict[tuple[dt.datetime, dt.datetime], list[str]] = {}
    for name, span in windows.items():
        distinct.setdefault(span, []).append(name)
    spec, bound = [], dict(params)
    for n, ((ws, we), names) in enumerate(distinct.items()):
        spec.append((names[0], f"kpi_s{n}", f"kpi_e{n}"))
        bound[f"kpi_s{n}"], bound[f"kpi_e{n}"] = ws, we
    bound["kpi_lo"], bound["kpi_hi"] = min(ws for ws, _ in distinct), max(we for _, we in distinct)
    statement = _sql(spec, key, join, where)
    rows = fetch(statement, bound) if fetch is not None else _fetch_binary(conn, statement, bound)
    out: dict[tuple[str, str | None], dict[str, Any]] = {}
    for win in dict.fromkeys(row["win"] for row in rows):
        mine = [row for row in rows if row["win"] == win]
        figures: list[dict[str, Any]] = [{c: row[c] for c in COUNTS} for row in mine]
        total: dict[str, Any] = {c: sum(f[c] for f in figures) for c in COUNTS}
        reported = [_micros(row["reported_at"]) for row in mine]
        group = np.repeat(np.arange(len(mine)), [len(r) for r in reported])
        since = np.concatenate(reported)
        for name, _, unit in DURATIONS:
            at = np.concatenate([_micros(row[f"{name}_at"]) for row in mine])
            known = at != _MISSING
            durations = (at[known] - since[known]).astype(np.int64)  # exact microseconds
            if key != "NULL":  # else the one group is the total
                per_group = _percentiles(durations, group[known], len(mine), unit)
                for f, pcts in zip(figures, per_group, strict=True):
                    f[f"{name}_pcts"] = pcts
            total[f"{name}_pcts"] = _total_percentiles(durations, unit)
        if key != "NULL":
            for row, f in zip(mine, figures, strict=True):
                out[(win, row["key"] if row["key"] is not None else "")] = f
        out[(win, None)] = total
    for names in distinct.values():  # the windows that are the same span answer the same figures
        for (win, which), answer in list(out.items()):
            if win == names[0]:
                for alias in names[1:]:
                    out[(alias, which)] = answer
    return out
