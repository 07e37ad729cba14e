"""Writing validated, assigned rows into a point table, in the caller's transaction.

Two strategies, chosen per load (``auto``) or forced:

* ``merge`` (the load is smaller than the table): binary COPY into a TEMP staging table, then one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into the target. The table stays open to other
  writers except for that final statement (addresses and hazards, which have no unique key, are
  locked against writers for it).
* ``rebuild`` (the load is larger than the table, e.g. a first load): the table is locked for the
  whole transaction (ACCESS EXCLUSIVE: readers and writers wait), its secondary indexes are
  dropped, the rows are COPYed straight into it and the indexes rebuilt. Building an index once is
  several times cheaper than maintaining it row by row (1M points: COPY 1.4 s without indexes
  against ~11 s with a primary key and GiST; the GiST then builds in ~2-3 s). An empty table is
  also truncated first: with ``wal_level = minimal`` PostgreSQL then skips WAL for everything
  written to it in the transaction and syncs the files at commit instead.

Either way the assignment trigger is switched off for the transaction (``SET LOCAL gridmap.bulk``)
because the rows arrive assigned, and either way everything happens in the caller's transaction:
a crash or a kill before commit leaves the table exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.engine import Connection

from gis.bulk import copybin
from gis.bulk.copybin import Column, PgType
from gis.core.counties import county_codes
from gis.spatial.assign import Assignment

Strategy = Literal["auto", "merge", "rebuild"]
ObjArray = npt.NDArray[np.object_]

# Target columns per table (in COPY order) and their wire types. ``geom`` is built from lon/lat.
TABLE_COLUMNS: dict[str, tuple[tuple[str, PgType], ...]] = {
    "incidents": (
        ("geom", "point"),
        ("reported_at", "timestamptz"),
        ("received_lon", "float8"),
        ("received_lat", "float8"),
        ("deadline_at", "timestamptz"),
        ("escalated_at", "timestamptz"),
        ("closed_at", "timestamptz"),
        ("accepted_at", "timestamptz"),
        ("dispatched_at", "timestamptz"),
        ("on_scene_at", "timestamptz"),
        ("handled_at", "timestamptz"),
        ("verified_at", "timestamptz"),
        ("category", "text"),
        ("source", "text"),
        ("external_id", "text"),
        ("received_crs", "text"),
        ("status", "text"),
        ("escalation_level", "text"),
        ("closed_level", "text"),
        ("address_text", "text"),
        ("description", "text"),
        ("reporter_name", "text"),
        ("reporter_phone", "text"),
    ),
    "buildings": (
        ("geom", "point"),
        ("households", "int4"),
        ("residents", "int4"),
        ("new_residents", "int4"),
        ("is_rental", "bool"),
        ("floors", "int2"),
        ("tenants", "int4"),
        ("rooms", "int4"),
        ("last_inspected_at", "timestamptz"),
        ("code", "text"),
        ("name", "text"),
        ("landlord_name", "text"),
        ("landlord_phone", "text"),
        ("landlord_id_card", "text"),
        ("escape_window", "text"),
        ("ebike_charging", "text"),
        ("wiring", "text"),
        ("risk_level", "text"),
    ),
    "addresses": (
        ("geom", "point"),
        ("building_id", "int8"),
        ("full_text", "text"),
        ("normalized", "text"),
        ("road", "text"),
        ("house_no", "text"),
        ("building_no", "text"),
        ("unit_no", "text"),
        ("room_no", "text"),
        ("group_no", "text"),
        ("precision", "text"),
    ),
    "hazards": (
        ("geom", "point"),
        ("found_at", "timestamptz"),
        ("rectify_by", "timestamptz"),
        ("rectified_at", "timestamptz"),
        ("building_id", "int8"),
        ("category", "text"),
        ("severity", "text"),
        ("status", "text"),
        ("description", "text"),
        ("responsible_party", "text"),
    ),
}
ASSIGN_COLUMNS: tuple[tuple[str, PgType], ...] = (
    ("generation_id", "int4"),
    ("snap_distance_m", "float8"),
    ("town_code", "text"),
    ("village_code", "text"),
    ("grid_code", "text"),
    ("micro_grid_code", "text"),
    ("station_code", "text"),
    ("beat_code", "text"),
    ("assign_status", "text"),
    # Not written by the trigger in bulk mode: computed here from the town and station codes.
    ("county_code", "text"),
)
# What ON CONFLICT can lean on; tables without a unique key are locked and deduplicated in process.
CONFLICT_TARGET = {
    "incidents": "(source, external_id) WHERE external_id IS NOT NULL",
    "buildings": "(code)",
}
# The tables a rebuild may truncate first when they are empty (the WAL-skipping first load).
TRUNCATABLE = ("incidents", "addresses", "hazards")


def referencing_tables(conn: Connection, table: str) -> list[str] | None:
    """The tables whose foreign keys reference ``table``, and theirs in turn, which TRUNCATE must
    name too; None when one of those keys is nullable: that table may hold rows while ``table``
    is empty, and truncating it would lose them (the load then goes without the truncation)."""
    query = sa.text(
        "SELECT c.conrelid::regclass::text, bool_and(a.attnotnull) FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
        "WHERE c.contype = 'f' AND c.confrelid = CAST(:t AS regclass) AND c.conrelid <> c.confrelid "
        "GROUP BY 1 ORDER BY 1"
    )
    found: list[str] = []
    todo = [table]
    while todo:
        for name, not_null in conn.execute(query, {"t": todo.pop()}).all():
            if not not_null:
                return None
            if name not in found and name != table:
                found.append(name)
                todo.append(name)
    return found


class StoreError(ValueError):
    pass


def bulk_mode(conn: Connection) -> str:
    """Switch the assignment trigger off for the transaction; returns the previous setting to restore."""
    previous = conn.execute(sa.text("SELECT coalesce(current_setting('gridmap.bulk', true), '')")).scalar()
    conn.execute(sa.text("SELECT set_config('gridmap.bulk', 'on', true)"))
    return str(previous or "")


def restore_mode(conn: Connection, previous: str) -> None:
    # Later statements of the caller's transaction must be assigned by the trigger again.
    conn.execute(sa.text("SELECT set_config('gridmap.bulk', :v, true)"), {"v": previous})


def copy_columns(table: str, frame: pd.DataFrame, assignment: Assignment) -> list[Column]:
    cols = []
    for name, pg in TABLE_COLUMNS[table]:
        if name == "geom":
            values: object = np.column_stack([frame["lon"].to_numpy(np.float64), frame["lat"].to_numpy(np.float64)])
        else:
            values = frame[name] if name in frame else pd.Series([None] * len(frame), dtype=object)
        cols.append(Column(name, pg, values))
    for name, pg in ASSIGN_COLUMNS:
        if name == "county_code":
            cols.append(Column(name, pg, county_codes(assignment.town_code, assignment.station_code)))
            continue
        values = getattr(assignment, name)
        if name == "generation_id":
            gen = pd.array(values, dtype="Int64")
            gen[np.asarray(values) < 0] = pd.NA
            values = gen
        cols.append(Column(name, pg, values))
    return cols


def column_list(table: str) -> str:
    return ", ".join(name for name, _ in (*TABLE_COLUMNS[table], *ASSIGN_COLUMNS))


def table_size(conn: Connection, table: str) -> int:
    """Rows in ``table``: the planner's estimate when it has one, else an exact count (small tables)."""
    estimate = conn.execute(
        sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
    ).scalar()
    if estimate is not None and estimate >= 0:
        return int(estimate)
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


@dataclass
class SecondaryIndex:
    name: str
    definition: str


def secondary_indexes(conn: Connection, table: str) -> list[SecondaryIndex]:
    """Indexes not backing a constraint (primary key, unique constraint): those can be dropped and rebuilt."""
    rows = conn.execute(
        sa.text(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = CAST(:t AS regclass) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) ORDER BY i.relname"
        ),
        {"t": table},
    ).all()
    return [SecondaryIndex(r[0], r[1]) for r in rows]


@dataclass
class TableWriter:
    """Streams chunks into ``table`` with the chosen strategy; ``finish`` returns rows inserted."""

    conn: Connection
    table: str
    strategy: Strategy
    rebuilt: list[str] = field(default_factory=list)
    truncated: bool = False
    previous_mode: str = ""
    _copy: object | None = None
    _copy_ctx: object | None = None
    _cursor: object | None = None
    _pending_header: bool = True

    @classmethod
    def open(cls, conn: Connection, table: str, rows: int, strategy: Strategy = "auto") -> TableWriter:
        if table not in TABLE_COLUMNS:
            raise StoreError(f"{table!r} is not a point table")
        previous = bulk_mode(conn)
        if strategy == "auto":
            strategy = "rebuild" if rows > table_size(conn, table) else "merge"
        writer = cls(conn, table, strategy, previous_mode=previous)
        if strategy == "rebuild":
            writer._prepare_rebuild()
        else:
            # temp_buffers can only change before the session first touches a temporary table
            # (even in a transaction that rolled back); a long-lived connection that imports again
            # keeps the size it has. The savepoint keeps a refusal from aborting the import.
            try:
                with conn.begin_nested():
                    conn.execute(sa.text("SET LOCAL temp_buffers = '256MB'"))
            except sa.exc.DBAPIError:
                pass
            conn.execute(
                sa.text(
                    f"CREATE TEMP TABLE gridmap_stage ON COMMIT DROP AS "  # noqa: S608
                    f"SELECT {column_list(table)} FROM {table} WITH NO DATA"
                )
            )
        return writer

    def lock(self) -> None:
        """Take the lock that makes in-process deduplication safe (merge of tables without a unique key)."""
        if self.strategy == "merge" and self.table not in CONFLICT_TARGET:
            self.conn.execute(sa.text(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE"))

    def _prepare_rebuild(self) -> None:
        conn, table = self.conn, self.table
        conn.execute(sa.text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        others = referencing_tables(conn, table) if table in TRUNCATABLE else None
        if others is not None:
            empty = conn.execute(sa.text(f"SELECT NOT EXISTS (SELECT 1 FROM {table})")).scalar()  # noqa: S608
            # Rows referencing an empty table by a NOT NULL key can't exist: the others are empty too.
            if empty:
                conn.execute(sa.text(f"TRUNCATE {', '.join((table, *others))}"))
                self.truncated = True
        for index in secondary_indexes(conn, table):
            conn.execute(sa.text(f'DROP INDEX "{index.name}"'))
            self.rebuilt.append(index.definition)
        # Big sorts for the index builds; the setting ends with the transaction.
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '1GB'"))

    def _raw_cursor(self) -> object:
        if self._cursor is None:
            raw = self.conn.connection.driver_connection
            self._cursor = raw.cursor()  # type: ignore[union-attr]
        return self._cursor

    def write(self, columns: list[Column]) -> None:
        if self._copy is None:
            target = self.table if self.strategy == "rebuild" else "gridmap_stage"
            cursor = self._raw_cursor()
            sql = f"COPY {target} ({column_list(self.table)}) FROM STDIN (FORMAT BINARY)"
            # A writer thread sends the data while the next chunk is assigned and encoded.
            writer = QueuedLibpqWriter(cursor)  # type: ignore[arg-type]
            self._copy_ctx = cursor.copy(sql, writer=writer)  # type: ignore[attr-defined]
            self._copy = self._copy_ctx.__enter__()  # type: ignore[attr-defined]
        data = copybin.encode(columns, header=self._pending_header, trailer=False)
        self._pending_header = False
        self._copy.write(data)  # type: ignore[attr-defined]

    def _close_copy(self) -> None:
        if self._copy is not None:
            if self._pending_header:
                self._copy.write(copybin.HEADER)  # type: ignore[attr-defined]
            self._copy.write(copybin.TRAILER)  # type: ignore[attr-defined]
            self._copy_ctx.__exit__(None, None, None)  # type: ignore[attr-defined]
            self._copy = self._copy_ctx = None

    def abort(self) -> None:
        if self._copy is not None:
            try:
                error = StoreError("import aborted")
                self._copy_ctx.__exit__(StoreError, error, None)  # type: ignore[attr-defined]
            except StoreError:
                pass
            finally:
                self._copy = self._copy_ctx = None

    def finish(self, written: int) -> int:
        self._close_copy()
        conn, table = self.conn, self.table
        if self.strategy == "rebuild":
            for definition in self.rebuilt:
                conn.execute(sa.text(definition))
            conn.execute(sa.text(f"ANALYZE {table}"))
            restore_mode(conn, self.previous_mode)
            return written
        self.lock()
        cols = column_list(table)
        conflict = CONFLICT_TARGET.get(table)
        suffix = f" ON CONFLICT {conflict} DO NOTHING" if conflict else ""
        inserted = conn.execute(
            sa.text(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM gridmap_stage{suffix}")  # noqa: S608
        ).rowcount
        conn.execute(sa.text("DROP TABLE gridmap_stage"))
        restore_mode(conn, self.previous_mode)
        return int(inserted or 0)


def existing_keys(conn: Connection, kind: str, keys: ObjArray) -> set[str]:
    """Which of ``keys`` (see gis.bulk.derive) are already stored."""
    if not len(keys):
        return set()
    if kind == "incidents":
        parts = [k.split("\x1f", 1) for k in keys.tolist()]
        found_incidents = conn.execute(
            sa.text(
                "SELECT k.s || chr(31) || k.e FROM unnest(CAST(:s AS text[]), CAST(:e AS text[])) AS k(s, e) "
                "WHERE EXISTS (SELECT 1 FROM incidents i WHERE i.source = k.s AND i.external_id = k.e)"
            ),
            {"s": [p[0] for p in parts], "e": [p[1] for p in parts]},
        ).scalars()
        return set(found_incidents)
    if kind == "buildings":
        return set(
            conn.execute(sa.text("SELECT code FROM buildings WHERE code = ANY(:k)"), {"k": keys.tolist()}).scalars()
        )
    if kind == "addresses":
        found = conn.execute(
            sa.text("SELECT DISTINCT normalized FROM addresses WHERE normalized = ANY(:k)"), {"k": keys.tolist()}
        ).scalars()
        return set(found)
    from gis.bulk.derive import hazard_key_of

    rows = conn.execute(
        sa.text(
            "SELECT category, (extract(epoch FROM found_at) * 1000000)::bigint, ST_X(geom), ST_Y(geom), description "
            "FROM hazards"
        )
    ).all()
    stored = {hazard_key_of(r[0], int(r[1]), float(r[2]), float(r[3]), r[4]) for r in rows}
    return stored & set(keys.tolist())


def building_ids(conn: Connection, codes: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = conn.execute(sa.text("SELECT code, id FROM buildings WHERE code = ANY(:c)"), {"c": wanted}).all()
    return {r[0]: int(r[1]) for r in rows}
