"""The read behind ``gis.analysis.kpis``: the figures of each (window, group) of the incidents,
and the county total of each window, from one statement.

Why this shape (issue 18, measured on the demo year by grid with EXPLAIN ANALYZE): the first
query computed the three percentile pairs with ``percentile_cont`` in a GroupAggregate over
GROUPING SETS (window, group) and (window). Ordered-set aggregates force sort-based grouping, so
every row of the year was sorted by (window, group code) under the database's collation, then each
value was put into a per-group sort a second time for the total row; and ``extract(epoch ...)``
(numeric since PostgreSQL 14) was evaluated three times per row. Then the rows were hashed into
(window, group) with each group's timestamps gathered into arrays: thousands of growing array
states (at 1M incidents the planner turned to a sort, or the states outgrew memory), the windows
joined to a VALUES list (the planner could not see their bounds and misjudged the row counts by
4x), the latest callback and the reopen events joined to every incident, and every incident
fetched from the heap. Now:

- each window is its own range scan with its bounds bound, an index-only scan of the covering
  index (migration 0034) when it holds the grouping key and no filter asks for another column;
- the latest callback result and the reopening are read from the incident (kept there by
  migration 0034's triggers), not joined;
- one part counts per (window, group) in a hashed aggregate (counts only, each incident's tests
  evaluated once in its row); a second part, per window, hands over the incidents' group key
  hashes and timestamps as packed arrays (array_send: 8 bytes and a length per value, appended in
  scan order, one array state each). The parts are branches of one UNION ALL: one snapshot, so
  they agree, and PostgreSQL may run them in parallel workers;
- each incident's group is found from its key hash (``_group_of``: a 64-bit hash, collisions
  detected and the statement rerun with another seed); the durations are differences in
  microseconds, exact, and the minutes (hours) these divided by 60e6 (3.6e9) in one rounding, as
  the former numeric ``extract(epoch ...) / 60.0`` gave them; the percentiles are interpolated as
  ``percentile_cont`` does (``_interpolate``), from the order statistics selected in each group's
  run (``_percentiles``), so the figures are the former ones. The totals are the sums of the
  groups' counts and the percentiles of all the window's durations.

Identical windows (the previous period and the same dates a year earlier coincide for a calendar
year) are counted once and answered for both names.
"""

from __future__ import annotations

import datetime as dt
import re
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
_TIMESTAMPTZ, _INT8 = 1184, 20
# A group's key as a 64-bit hash (its NULL as 0), so that each incident's group travels as 8 bytes
# and not as its text; a collision among one window's groups is detected and the statement rerun
# with the next seed (``window_rows``).
_HASH = "coalesce(hashtextextended({key}, CAST(:kpi_seed AS bigint)), 0)"
_SEEDS = 4
_SLOTS = 2**20 - 1
# The columns of the covering index ix_incidents_kpi (migration 0034).
_COVERED = frozenset(
    [
        "reported_at",
        "id",
        "accepted_at",
        "on_scene_at",
        "handled_at",
        "closed_at",
        "deadline_at",
        "escalated_at",
        "was_reopened",
        "status",
        "closed_level",
        "last_callback_result",
        "town_code",
        "village_code",
        "grid_code",
    ]
)
_COLUMN = re.compile(r"\b(\w+)\.(\w+)\b")


def _index_only(key: str, join: str, where: str) -> bool:
    """Whether the covering index answers the key and the filter alone (only its columns of ``i``)."""
    used = _COLUMN.findall(f"{key} {where}")
    return not join and all(alias == "i" and column in _COVERED for alias, column in used)


_MISSING = np.iinfo(np.int64).min
IntArray = npt.NDArray[np.int64]
Percentiles = list[float] | None
Fetch = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


def _int64s(blob: bytes | None, element: int = _TIMESTAMPTZ) -> IntArray:
    """The values of an array_send blob of int8 or timestamptz (int64 microseconds), as int64;
    None (array_agg over no rows) is no values."""
    if blob is None:
        return np.zeros(0, np.int64)
    ndim, has_nulls, oid, count, _ = _HEADER.unpack_from(blob)
    items = np.frombuffer(blob, _ELEMENT, offset=_HEADER.size)
    if (ndim, has_nulls, oid) != (1, 0, element) or len(items) != count:
        raise ValueError("unexpected array layout from the KPI query")
    return items["value"].astype(np.int64)  # native and contiguous: the big-endian view is slow to compute on


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


def _percentiles(runs: IntArray, n: IntArray, unit: float) -> list[Percentiles]:
    """The percentiles (``_interpolate``) of each group's durations (microseconds): ``runs`` holds
    them group after group, ``n`` how many each. Only the order statistics the percentiles read are
    put in place in each run (a selection, linear; a sort of all of them measured ~3x slower)."""
    if len(runs) == 0:
        return [None] * len(n)
    start = np.concatenate(([0], np.cumsum(n)[:-1])).astype(np.int64)
    positions = [p * (np.maximum(n, 1) - 1) for p in QUANTILES]
    needed = np.stack([np.floor(x) for x in positions] + [np.ceil(x) for x in positions], axis=1).astype(np.int64)
    several = n > 1  # a run of one is in order
    for first, size, kth in zip(start[several].tolist(), n[several].tolist(), needed[several].tolist(), strict=True):
        runs[first : first + size].partition(sorted(set(kth)))  # in place: a view of runs
    return _interpolate(runs, start, n, unit)


def _total_percentiles(durations: IntArray, unit: float) -> Percentiles:
    """The percentiles of all the durations: only the needed order statistics selected (linear)."""
    n = len(durations)
    if n == 0:
        return None
    needed = sorted({int(np.floor(p * (n - 1))) for p in QUANTILES} | {int(np.ceil(p * (n - 1))) for p in QUANTILES})
    return _interpolate(np.partition(durations, needed), np.zeros(1, np.int64), np.array([n]), unit)[0]


def _window_from(join: str, where: str, n: int) -> str:
    """The incidents of window ``n`` (its bounds bound as :kpi_s<n>, :kpi_e<n>) that the filter selects."""
    return f"FROM incidents i {join} WHERE i.reported_at >= :kpi_s{n} AND i.reported_at < :kpi_e{n} AND ({where})"


def _packed(n: int, source: str, hashed: str, times: list[str]) -> str:
    """Window ``n``'s row of the packed arrays (the count columns empty) over ``source``."""
    arrays = ", ".join(f"array_send(array_agg({t}))" for t in times)
    return (
        f"SELECT {n}, 1, NULL, NULL, count(*), {', '.join(['NULL'] * (len(COUNTS) - 1))}, {hashed}, {arrays} {source}"
    )


def _sql(windows: int, key: str, join: str, where: str, rescan: bool) -> str:
    """One statement (one snapshot, so the two parts agree): the counts per (window, group), and
    per window its incidents' group hashes and times as packed arrays. ``rescan``: each part reads
    the windows itself (cheap when the covering index answers the key and the filter: an index-only
    range scan, and the parts can run in parallel); else the rows are read once and kept."""
    levels = ", ".join(f"count(*) FILTER (WHERE r.closed_level = '{lv}') AS closed_at_{lv}" for lv in CLOSE_LEVELS)
    ts = [("reported_at", "i.reported_at")] + [
        (f"{name}_at", f"coalesce(i.{column}, '-infinity')") for name, column, _ in DURATIONS
    ]
    text_key = f"CAST({key} AS text)"
    hashed = "NULL" if key == "NULL" else "array_send(array_agg({}))"
    columns = (
        # Each incident's tests evaluated once, where its row is read (not once per count).
        f"{{n}} AS win, {text_key} AS key, i.status = 'rejected' AS rejected, i.status = 'closed' AS closed, "
        "i.closed_at <= i.deadline_at AS on_time, "
        "CASE WHEN i.status = 'closed' THEN i.closed_level END AS closed_level, "
        "i.escalated_at IS NOT NULL AS escalated, i.was_reopened, i.last_callback_result"
    )
    if rescan:
        with_rows = ""
        rows = (
            "("
            + " UNION ALL ".join(f"SELECT {columns.format(n=n)} {_window_from(join, where, n)}" for n in range(windows))
            + ")"
        )
        packed = [
            _packed(
                n,
                _window_from(join, where, n),
                hashed.format(_HASH.format(key=text_key)),
                [e for _, e in ts],
            )
            for n in range(windows)
        ]
    else:
        kept = f"{columns}, {_HASH.format(key=text_key)} AS hash, " + ", ".join(f"{e} AS {c}" for c, e in ts)
        scans = " UNION ALL ".join(f"SELECT {kept.format(n=n)} {_window_from(join, where, n)}" for n in range(windows))
        with_rows, rows = f"WITH kept AS MATERIALIZED ({scans})", "kept"
        packed = [
            _packed(n, f"FROM kept WHERE kept.win = {n}", hashed.format("kept.hash"), [f"kept.{c}" for c, _ in ts])
            for n in range(windows)
        ]
    # Only constants and the filter's own text (values bound) are formatted in.
    return f"""
        {with_rows}
        SELECT r.win, 0 AS part, r.key, {_HASH.format(key="r.key")} AS hash,
               count(*) AS reported,
               count(*) FILTER (WHERE r.rejected) AS rejected,
               count(*) FILTER (WHERE r.closed) AS closed,
               count(*) FILTER (WHERE r.closed AND r.on_time) AS closed_on_time,
               {levels},
               count(*) FILTER (WHERE r.escalated) AS escalated,
               count(*) FILTER (WHERE r.was_reopened) AS reopened,
               count(r.last_callback_result) AS callbacks,
               count(*) FILTER (WHERE r.last_callback_result IN ('satisfied', 'basically_satisfied')) AS satisfied,
               CAST(NULL AS bytea) AS hashes,
               {", ".join(f"CAST(NULL AS bytea) AS {c}" for c, _ in ts)}
        -- The latest callback result and the reopening are kept on the incident (migration 0034's
        -- triggers): no join of the callbacks and the event log to every incident of the windows.
        FROM {rows} r
        GROUP BY r.win, r.key
        UNION ALL
        {" UNION ALL ".join(packed)}
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


class _Collision(Exception):
    """Two groups of a window share a key hash (with this seed)."""


def _group_of(hashes: IntArray, row_hashes: IntArray) -> IntArray:
    """Each row's group: the position in ``hashes`` (the window's groups, in their order) of its
    hash. Looked up in a table indexed by 20 bits of the hash (some shift of it that tells the
    groups apart; a binary search measured ~3x slower), else by that binary search; every row's
    hash is checked against its group's."""
    if len(set(hashes.tolist())) != len(hashes):
        raise _Collision
    group: IntArray | None = None
    for shift in range(0, 45, 4):
        slots = (hashes >> shift) & _SLOTS
        if len(np.unique(slots)) == len(slots):
            table = np.zeros(_SLOTS + 1, np.int32)  # zero pages: only the groups' slots are written
            table[slots] = np.arange(len(hashes))
            group = table[(row_hashes >> shift) & _SLOTS].astype(np.int64)
            break
    if group is None:
        order = np.argsort(hashes)
        group = order[np.minimum(np.searchsorted(hashes[order], row_hashes), max(len(hashes) - 1, 0))]
    if len(row_hashes) and (len(hashes) == 0 or not np.array_equal(hashes[group], row_hashes)):
        raise ValueError("an incident of the KPI query has no group")  # one statement: cannot happen
    return group


def _window(mine: list[dict[str, Any]], packed: dict[str, Any], grouped: bool) -> dict[str | None, dict[str, Any]]:
    """{group key: figures, None: the window's total} of one window: ``mine`` its rows of counts
    per group, ``packed`` its incidents' group hashes and times."""
    figures: list[dict[str, Any]] = [{c: row[c] for c in COUNTS} for row in mine]
    total: dict[str, Any] = {c: sum(f[c] for f in figures) for c in COUNTS}
    since = _int64s(packed["reported_at"])
    if len(since) != total["reported"]:
        raise ValueError("the KPI query's counts and times disagree")  # one statement: cannot happen
    group = (
        _group_of(np.array([row["hash"] for row in mine], np.int64), _int64s(packed["hashes"], _INT8))
        if grouped
        else None
    )
    if group is not None:  # the incidents group after group (a radix sort of small numbers)
        order = np.argsort(group.astype(np.uint16 if len(mine) <= 2**16 else np.int64), kind="stable")
    for name, _, unit in DURATIONS:
        at = _int64s(packed[f"{name}_at"])
        known = at != _MISSING
        if group is not None:
            known = order[known[order]]  # the incidents with this time, group after group
        durations = at[known] - since[known]  # exact microseconds
        if group is not None:
            n = np.bincount(group[known], minlength=len(mine))
            # The total first: the per-group selection below reorders durations within each group.
            total[f"{name}_pcts"] = _total_percentiles(durations, unit)
            for f, pcts in zip(figures, _percentiles(durations, n, unit), strict=True):
                f[f"{name}_pcts"] = pcts
        else:
            total[f"{name}_pcts"] = _total_percentiles(durations, unit)
    out: dict[str | None, dict[str, Any]] = {}
    if grouped:
        for row, f in zip(mine, figures, strict=True):
            out[row["key"] if row["key"] is not None else ""] = f
    out[None] = total
    return out


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
    gis.shards.fanout runs it on every shard at once and merges the rows of each (window, part, key)."""
    distinct: dict[tuple[dt.datetime, dt.datetime], list[str]] = {}
    for name, span in windows.items():
        distinct.setdefault(span, []).append(name)
    bound = dict(params)
    for n, (ws, we) in enumerate(distinct):
        bound[f"kpi_s{n}"], bound[f"kpi_e{n}"] = ws, we
    # The covering index (migration 0034) holds these keys: rereading the windows costs an
    # index-only scan; a join (the lead holder) or a heap column is better read once.
    rescan = _index_only(key, join, where)
    sql = _sql(len(distinct), key, join, where, rescan)
    grouped = key != "NULL"
    for seed in range(_SEEDS):
        seeded = {**bound, "kpi_seed": seed}
        rows = fetch(sql, seeded) if fetch is not None else _fetch_binary(conn, sql, seeded)
        try:
            answers = [
                _window(
                    [row for row in rows if row["win"] == n and row["part"] == 0],
                    next(row for row in rows if row["win"] == n and row["part"] == 1),
                    grouped,
                )
                for n in range(len(distinct))
            ]
            break
        except _Collision:
            continue
    else:
        raise ValueError("the KPI groups' key hashes collide with every seed")
    out: dict[tuple[str, str | None], dict[str, Any]] = {}
    # The windows that are the same span answer the same figures (the same objects); a window
    # without incidents has no entry, not even a total.
    for names, answer in zip(distinct.values(), answers, strict=True):
        for which, figures in answer.items():
            if figures["reported"]:
                for name in names:
                    out[(name, which)] = figures
    return out
