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
- each window is read once (a second pass counting per (window, group) in a hashed aggregate cost
  as much as the arrays, issue 18 step 2), in time slices (``_SLICES``), each slice one aggregate
  handing over its incidents as packed arrays (array_send: 8 bytes and a length per value,
  appended in scan order, one array state each): its group key hash with the incident's counted
  tests in the hash's low 10 bits (``_FLAGS``), and its timestamps. The slices are branches of one
  UNION ALL: one snapshot, and PostgreSQL's parallel workers share them (array_agg has no partial
  form before PostgreSQL 16, so one aggregate over a whole year ran in one process);
- the group keys come from a short list of the keys the groups may have (the layer's codes, the
  units, the people: ``keys``) with their hashes, in the same statement; when an incident's hash
  is none of them, the statement is rerun with the keys found in the windows themselves;
- each incident's group is found from its key hash (``_group_of``: a 54-bit hash, collisions
  among the keys detected and the statement rerun with another seed); the counts are counted per
  group from the flags in numpy (``_counts``); the durations are differences in
  microseconds, exact, and the minutes (hours) these divided by 60e6 (3.6e9) in one rounding, as
  the former numeric ``extract(epoch ...) / 60.0`` gave them; the percentiles are interpolated as
  ``percentile_cont`` does (``_interpolate``), from the order statistics selected in each group's
  run (``_percentiles``), so the figures are the former ones. The totals are the sums of the
  groups' counts and the percentiles of all the window's durations. The previous windows' figures
  are all needed (the answer's changes cover every KPI, percentiles included).

Identical windows (the previous period and the same dates a year earlier coincide for a calendar
year) are counted once and answered for both names.
"""

from __future__ import annotations

import datetime as dt
import itertools
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


def _window_from(join: str, where: str, n: int | str) -> str:
    """The incidents of window (or slice) ``n`` (its bounds bound as :kpi_s<n>, :kpi_e<n>) that
    the filter selects."""
    return f"FROM incidents i {join} WHERE i.reported_at >= :kpi_s{n} AND i.reported_at < :kpi_e{n} AND ({where})"


# Each incident's counted tests as 10 bits (below; the closing level, when closed, as its position
# in CLOSE_LEVELS + 1 in bits 7-9), sent in the low bits of its group key hash (so one array, not
# two) and counted per group in numpy (``_counts``).
_LEVEL_SHIFT = 7
_FLAGS = (
    "CAST(CASE i.status WHEN 'rejected' THEN 1 WHEN 'closed' THEN 2"
    " + CASE WHEN i.closed_at <= i.deadline_at THEN 4 ELSE 0 END"
    " + CASE i.closed_level "
    + " ".join(f"WHEN '{lv}' THEN {(n + 1) << _LEVEL_SHIFT}" for n, lv in enumerate(CLOSE_LEVELS))
    + " ELSE 0 END ELSE 0 END"
    " + CASE WHEN i.escalated_at IS NOT NULL THEN 8 ELSE 0 END"
    " + CASE WHEN i.was_reopened THEN 16 ELSE 0 END"
    " + CASE WHEN i.last_callback_result IS NULL THEN 0"
    " WHEN i.last_callback_result IN ('satisfied', 'basically_satisfied') THEN 96 ELSE 32 END AS bigint)"
)
_CODES = 1 << (_LEVEL_SHIFT + 3)


def _indicators() -> npt.NDArray[np.float64]:
    """Which of ``COUNTS`` each value of the flags' low 5 bits (rows 0-31) and of their level and
    callback bits (``_high``: rows 32-63) adds to: a 0/1 matrix, 64 x COUNTS."""
    f = np.arange(32)
    level, callback = f >> 2, f & 3
    low = {"reported": f >= 0, "rejected": f & 1, "closed": f & 2, "closed_on_time": f & 4}
    low |= {"escalated": f & 8, "reopened": f & 16}
    high = {f"closed_at_{lv}": level == n + 1 for n, lv in enumerate(CLOSE_LEVELS)}
    high |= {"callbacks": callback & 1, "satisfied": callback & 2}
    rows = [np.asarray(low.get(c, f < 0)) != 0 for c in COUNTS], [np.asarray(high.get(c, f < 0)) != 0 for c in COUNTS]
    return np.concatenate([np.stack(rows[0], axis=1), np.stack(rows[1], axis=1)]).astype(np.float64)


_INDICATORS = _indicators()
# Each window is read in this many slices of equal time, each its own aggregate, so that
# parallel workers share a window (array_agg has no parallel partial form before PostgreSQL 16).
_SLICES = 4


def _sql(slices: list[int], key: str, join: str, where: str, keys: str) -> str:
    """One statement (one snapshot): per slice of each window (``slices``: each slice's window)
    one row of its incidents' group key hashes with their flags, and their times, as packed
    arrays (a range scan each, index-only when the covering index holds the key and the filter's
    columns), then the candidate group keys (``keys``: SQL of one text column) with their hashes,
    from which each incident's group is found."""
    times = ["i.reported_at"] + [f"coalesce(i.{column}, '-infinity')" for _, column, _ in DURATIONS]
    text_key = f"CAST({key} AS text)"
    hashed = "0" if key == "NULL" else f"({_HASH.format(key=text_key)}) & {-_CODES}"
    arrays = ", ".join(f"array_send(array_agg({t}))" for t in times)
    packed = [
        f"SELECT {n}, 1, NULL, NULL, count(*), array_send(array_agg(({hashed}) | {_FLAGS})), {arrays} "
        + _window_from(join, where, f"{n}x{j}")
        for j, n in enumerate(slices)
    ]
    # Only constants and the filter's own text (values bound) are formatted in.
    return f"""
        SELECT -1 AS win, 2 AS part, k.key, ({_HASH.format(key="k.key")}) & {-_CODES} AS hash,
               CAST(NULL AS bigint) AS reported, CAST(NULL AS bytea) AS hashes,
               {", ".join(f"CAST(NULL AS bytea) AS {c}" for c in _TIMES)}
        FROM (SELECT DISTINCT CAST(c.key AS text) AS key FROM ({keys}) c(key)) k
        UNION ALL
        {" UNION ALL ".join(packed)}
    """  # noqa: S608


_TIMES = ("reported_at", *(f"{name}_at" for name, _, _ in DURATIONS))


def _scanned_keys(windows: int, key: str, join: str, where: str) -> str:
    """The group keys of the windows' incidents themselves (a scan: when no cheaper candidate list
    is given, or it misses a key)."""
    return " UNION ".join(f"SELECT CAST({key} AS text) {_window_from(join, where, n)}" for n in range(windows))


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
    """Two candidate group keys share a key hash (with this seed)."""


class _Unresolved(ValueError):
    """An incident's key hash is none of the candidate keys'."""


def _group_of(hashes: IntArray, row_hashes: IntArray) -> IntArray:
    """Each row's group: the position in ``hashes`` (the candidate keys, in their order) of its
    hash. Looked up in a table indexed by 20 bits of the hash (some shift of it that tells the
    keys apart; a binary search measured ~3x slower), else by that binary search; every row's
    hash is checked against its group's."""
    if len(set(hashes.tolist())) != len(hashes):
        raise _Collision
    group: IntArray | None = None
    for shift in range(0, 45, 4):
        slots = (hashes >> shift) & _SLOTS
        if len(np.unique(slots)) == len(slots):
            table = np.zeros(_SLOTS + 1, np.int32)  # zero pages: only the keys' slots are written
            table[slots] = np.arange(len(hashes))
            group = table[(row_hashes >> shift) & _SLOTS].astype(np.int64)
            break
    if group is None:
        order = np.argsort(hashes)
        group = order[np.minimum(np.searchsorted(hashes[order], row_hashes), max(len(hashes) - 1, 0))]
    if len(row_hashes) and (len(hashes) == 0 or not np.array_equal(hashes[group], row_hashes)):
        raise _Unresolved("an incident of the KPI query has no group among the candidate keys")
    return group


def _counts(group: IntArray, flags: IntArray, groups: int) -> npt.NDArray[np.int64]:
    """COUNTS per group (groups x COUNTS): the incidents counted per (group, low 5 bits) and per
    (group, level and callback bits) in two small bincounts, then summed per count over the values
    that add to it (exact in float64)."""
    high = ((flags >> _LEVEL_SHIFT) << 2) | ((flags >> 5) & 3)
    per_low = np.bincount(group * 32 + (flags & 31), minlength=groups * 32).reshape(groups, 32)
    per_high = np.bincount(group * 32 + high, minlength=groups * 32).reshape(groups, 32)
    return np.rint(np.hstack([per_low, per_high]).astype(np.float64) @ _INDICATORS).astype(np.int64)


def _window(
    packed: list[dict[str, Any]], candidates: list[str | None], hashes: IntArray | None
) -> dict[str | None, dict[str, Any]]:
    """{group key: figures, None: the window's total} of one window from its packed rows (its
    slices'); ``candidates`` and their ``hashes`` the possible group keys (None: the totals only)."""

    def values(column: str, element: int = _TIMESTAMPTZ) -> IntArray:
        return np.concatenate([np.zeros(0, np.int64), *(_int64s(row[column], element) for row in packed)])

    since = values("reported_at")
    keyed = values("hashes", _INT8)
    flags = keyed & (_CODES - 1)
    if not len(since) == len(keyed) == sum(row["reported"] for row in packed):
        raise ValueError("the KPI query's counts and times disagree")  # one statement: cannot happen
    keys: list[str | None] = [None]
    if hashes is None:
        group = np.zeros(len(since), np.int64)
    else:
        found = _group_of(hashes, keyed & -_CODES)
        present = np.bincount(found, minlength=len(hashes)) > 0
        dense = np.cumsum(present) - 1  # the groups present, numbered in the candidates' order
        group = dense[found]
        keys = [candidates[c] for c in np.flatnonzero(present).tolist()]
    counts = _counts(group, flags, len(keys))
    figures: list[dict[str, Any]] = [dict(zip(COUNTS, row, strict=True)) for row in counts.tolist()]
    total: dict[str, Any] = dict(zip(COUNTS, counts.sum(axis=0).tolist(), strict=True))
    if hashes is not None:  # the incidents group after group (a radix sort of small numbers), once
        order = np.argsort(group.astype(np.uint16 if len(keys) <= 2**16 else np.int64), kind="stable")
        since, group = since[order], group[order]
    for name, _, unit in DURATIONS:
        at = values(f"{name}_at")
        if hashes is not None:
            at = at[order]
        known = at != _MISSING
        durations = at[known] - since[known]  # exact microseconds, still group after group
        # The total first: the per-group selection below reorders durations within each group.
        total[f"{name}_pcts"] = _total_percentiles(durations, unit)
        if hashes is not None:
            n = np.bincount(group[known], minlength=len(keys))
            for f, pcts in zip(figures, _percentiles(durations, n, unit), strict=True):
                f[f"{name}_pcts"] = pcts
    out: dict[str | None, dict[str, Any]] = {}
    if hashes is not None:
        for k, f in zip(keys, figures, strict=True):
            out[k if k is not None else ""] = f
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
    keys: str | None = None,
) -> dict[tuple[str, str | None], dict[str, Any]]:
    """{(window name, group key): counts (``COUNTS``) and ``<duration>_pcts`` ([p50, p90] or None)}
    for every group present in a window, and under the key None the window's total. ``key`` is the
    grouping key's SQL (``NULL``: totals only), ``join`` the join it needs, ``where`` and ``params``
    the filter's; ``keys`` an SQL list of the keys the groups may have (one text column, its
    values in ``params``): cheaper than finding them in the windows, which is done when it is not
    given or misses one. ``fetch`` runs the statement and returns its rows (default: on ``conn``,
    binary); gis.shards.fanout runs it on every shard at once and merges the rows of each (window,
    part, key)."""
    distinct: dict[tuple[dt.datetime, dt.datetime], list[str]] = {}
    for name, span in windows.items():
        distinct.setdefault(span, []).append(name)
    bound = dict(params)
    slices: list[int] = []
    for n, (ws, we) in enumerate(distinct):
        bound[f"kpi_s{n}"], bound[f"kpi_e{n}"] = ws, we
        cuts = [ws + (we - ws) * j / _SLICES for j in range(_SLICES)] + [we]
        for j, (ss, se) in enumerate(itertools.pairwise(cuts), start=len(slices)):
            bound[f"kpi_s{n}x{j}"], bound[f"kpi_e{n}x{j}"] = ss, se
            slices.append(n)
    grouped = key != "NULL"
    scanned = _scanned_keys(len(distinct), key, join, where)
    candidates_sql = keys if keys is not None and grouped else scanned
    seed = 0
    while True:
        sql = _sql(slices, key, join, where, candidates_sql if grouped else "SELECT NULL")
        seeded = {**bound, "kpi_seed": seed}
        rows = fetch(sql, seeded) if fetch is not None else _fetch_binary(conn, sql, seeded)
        named = [row for row in rows if row["part"] == 2 and row["key"] is not None]
        candidates: list[str | None] = [None, *(row["key"] for row in named)]  # NULL's hash is 0
        hashes = np.array([0, *(row["hash"] for row in named)], np.int64) if grouped else None
        try:
            answers = [
                _window([row for row in rows if row["win"] == n and row["part"] == 1], candidates, hashes)
                for n in range(len(distinct))
            ]
            break
        except _Collision:
            seed += 1
            if seed == _SEEDS:
                raise ValueError("the KPI groups' key hashes collide with every seed") from None
        except _Unresolved:
            if candidates_sql == scanned:
                raise
            candidates_sql = scanned
    out: dict[tuple[str, str | None], dict[str, Any]] = {}
    # The windows that are the same span answer the same figures (the same objects); a window
    # without incidents has no entry, not even a total.
    for names, answer in zip(distinct.values(), answers, strict=True):
        for which, figures in answer.items():
            if figures["reported"]:
                for name in names:
                    out[(name, which)] = figures
    return out
