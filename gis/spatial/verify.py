"""``gridmap verify``: re-derive every stored assignment from the polygons and report (or repair) disagreements.

This is the check behind "every point carries its units": whatever wrote a row (API, bulk import,
a plain SQL INSERT, or a writer that set ``gridmap.bulk`` and so bypassed the trigger), the row's
town, village, grid, micro-grid, station, beat and status must equal what the in-process assigner
(gis/spatial/assign.py, the SQL function's twin) derives from the boundaries, and its ``county_code``
(migration 0032) the county of those units as the trigger computes it (gis.core.counties: the
county of its town, else of its station, else the home county ``gridmap_home_county()``), so a row
filed under the wrong county (a writer that set it by hand, or moved a row without it) is found.

Which boundaries a row answers to is the rule of gis/spatial/genrule.py, the one the trigger, the
bulk importer and publishing follow:

* records that have ended (closed and rejected incidents, rectified hazards) keep the generation
  they were handled under: they are compared with the polygons of their stored ``generation_id``
  (or, when it is missing, of the generation in force at their time), generation included;
* open work (other incidents and hazards, every building and address) follows the boundaries in
  force now. Its ``generation_id`` may name an earlier generation when a publish left it where it
  was (gis/spatial/reassign.py only rewrites rows that move), so only the codes and status are
  compared.

Rows are read with binary COPY (coordinates exactly as stored) and compared vectorized; a
million incidents take a few seconds. ``repair`` rewrites the disagreeing rows in one statement
per table, in the caller's transaction.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.bulk import copybin
from gis.bulk.copybin import Column
from gis.bulk.store import bulk_mode, restore_mode
from gis.core import audit
from gis.core.counties import county_codes
from gis.spatial.assign import AssignerCache, Assignment, generations_for_times
from gis.spatial.genrule import LIFECYCLES, final_time_sql, is_final

POINT_TABLES = ("incidents", "buildings", "addresses", "hazards")
CODE_COLUMNS = ("town_code", "village_code", "grid_code", "micro_grid_code", "station_code", "beat_code")
COMPARED = (*CODE_COLUMNS, "assign_status", "county_code")
_REPAIRED = (*CODE_COLUMNS, "assign_status", "county_code")  # the text columns a repair rewrites
Progress = Callable[[str, int, int], None]


class VerifyError(ValueError):
    pass


@dataclass
class TableCheck:
    table: str
    checked: int = 0
    disagreeing: int = 0
    repaired: int = 0
    # First rows that disagree: id, column, stored, derived.
    sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _read_points(conn: Connection, table: str) -> pd.DataFrame:
    """id, lon, lat of every row, exactly as stored (binary COPY parsed by numpy)."""
    raw = conn.connection.driver_connection
    buf = io.BytesIO()
    with raw.cursor() as cur:  # type: ignore[union-attr]
        sql = f"COPY (SELECT id, ST_X(geom), ST_Y(geom) FROM {table} ORDER BY id) TO STDOUT (FORMAT BINARY)"  # noqa: S608
        with cur.copy(sql) as copy:
            for block in copy:
                buf.write(block)
    data = buf.getvalue()
    body = data[len(copybin.HEADER) : -len(copybin.TRAILER)]
    row = np.dtype(
        [("n", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"), ("x", ">f8"), ("l3", ">i4"), ("y", ">f8")]
    )
    if len(body) % row.itemsize:
        raise VerifyError(f"{table}: unexpected COPY data (a geometry that is not a point?)")
    rows = np.frombuffer(body, dtype=row)
    return pd.DataFrame(
        {"id": rows["id"].astype(np.int64), "lon": rows["x"].astype(np.float64), "lat": rows["y"].astype(np.float64)}
    )


def _read_assignment(conn: Connection, table: str) -> pd.DataFrame:
    extra = ""
    if table in LIFECYCLES:
        ended = final_time_sql(table, None)
        status = LIFECYCLES[table].status_column
        extra = f", {status} AS status, (extract(epoch FROM {ended}) * 1000000)::bigint AS ended_us"
    sql = (
        f"COPY (SELECT id, generation_id, {', '.join(COMPARED)}{extra} FROM {table} ORDER BY id) "  # noqa: S608
        f"TO STDOUT (FORMAT CSV, HEADER)"
    )
    raw = conn.connection.driver_connection
    buf = io.BytesIO()
    with raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[union-attr]
        for block in copy:
            buf.write(block)
    buf.seek(0)
    dtypes: dict[str, object] = {c: object for c in COMPARED}
    dtypes.update({"id": np.int64, "generation_id": "Int64"})
    if table in LIFECYCLES:
        dtypes.update({"status": object, "ended_us": np.int64})
    frame = pd.read_csv(buf, dtype=dtypes, keep_default_na=False, na_values=[""])
    for c in COMPARED:
        frame[c] = pd.Series(_none(frame[c]), dtype=object)
    return frame


def _none(values: pd.Series) -> npt.NDArray[np.object_]:
    """Object array with None for every missing value (NaN, NA)."""
    arr = values.to_numpy(dtype=object)
    out: npt.NDArray[np.object_] = arr.copy()
    out[pd.isna(arr)] = None
    return out


def expected_generations(conn: Connection, table: str, stored: pd.DataFrame) -> npt.NDArray[np.int64]:
    """The generation each row answers to (see the module docstring); -1 where none is published."""
    n = len(stored)
    expected = generations_for_times(conn, None, n)
    if table not in LIFECYCLES or not n:
        return expected
    final = is_final(table, stored["status"].to_numpy(dtype=object))
    stored_gen = stored["generation_id"].to_numpy(dtype=np.float64, na_value=np.nan)
    keep = final & ~np.isnan(stored_gen)
    expected[keep] = stored_gen[keep].astype(np.int64)
    fill = final & np.isnan(stored_gen)
    if fill.any():
        times = pd.Series(pd.to_datetime(stored.loc[fill, "ended_us"].to_numpy(), unit="us", utc=True))
        expected[fill] = generations_for_times(conn, times, int(fill.sum()))
    return expected


def _derive(conn: Connection, points: pd.DataFrame, gens: npt.NDArray[np.int64], cache: AssignerCache) -> pd.DataFrame:
    n = len(points)
    out = {c: np.full(n, None, dtype=object) for c in (*CODE_COLUMNS, "assign_status")}
    out_gen = np.full(n, -1, dtype=np.int64)
    out_snap = np.full(n, np.nan)
    lon, lat = points["lon"].to_numpy(), points["lat"].to_numpy()
    for g in np.unique(gens):
        if g < 0:
            continue
        sel = np.flatnonzero(gens == g)
        part: Assignment = cache.get(conn, int(g)).assign(lon[sel], lat[sel])
        for c in out:
            out[c][sel] = getattr(part, c)
        out_gen[sel] = part.generation_id
        out_snap[sel] = part.snap_distance_m
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in out.items()})
    frame["generation_id"] = out_gen
    frame["snap_distance_m"] = out_snap
    return frame


def check_table(
    conn: Connection, table: str, *, cache: AssignerCache | None = None, sample: int = 20, repair: bool = False
) -> TableCheck:
    if table not in POINT_TABLES:
        raise VerifyError(f"{table!r} is not a point table; tables: {', '.join(POINT_TABLES)}")
    cache = cache or AssignerCache()
    points = _read_points(conn, table)
    stored = _read_assignment(conn, table)
    stored = points.merge(stored, on="id", how="inner", validate="one_to_one")
    gens = expected_generations(conn, table, stored)
    derived = _derive(conn, stored, gens, cache)
    home = str(conn.execute(sa.text("SELECT gridmap_home_county()")).scalar_one())
    derived["county_code"] = pd.Series(county_codes(derived["town_code"], derived["station_code"], home), dtype=object)
    differs = np.zeros(len(stored), dtype=bool)
    per_column: dict[str, npt.NDArray[np.bool_]] = {}
    for c in COMPARED:
        a = _none(stored[c])
        b = _none(derived[c])
        per_column[c] = a != b
        differs |= per_column[c]
    stored_gen = stored["generation_id"].to_numpy(dtype=np.float64, na_value=np.nan)
    unassigned = np.isnan(stored_gen) & (gens >= 0)
    per_column["generation_id"] = unassigned.copy()
    if table in LIFECYCLES:
        final = is_final(table, stored["status"].to_numpy(dtype=object))
        wrong_gen = final & (gens >= 0) & (stored_gen != gens)
        per_column["generation_id"] |= wrong_gen
    differs |= per_column["generation_id"]
    result = TableCheck(table, checked=len(stored), disagreeing=int(differs.sum()))
    result.ids = stored["id"].to_numpy()[differs]
    result.sample = _sample(stored, derived, per_column, differs, sample)
    if repair and result.disagreeing:
        result.repaired = _repair(conn, table, stored["id"].to_numpy()[differs], derived.loc[differs])
    return result


def _sample(
    stored: pd.DataFrame,
    derived: pd.DataFrame,
    per_column: dict[str, npt.NDArray[np.bool_]],
    differs: npt.NDArray[np.bool_],
    limit: int,
) -> pd.DataFrame:
    rows = []
    for i in np.flatnonzero(differs)[:limit]:
        for c, mask in per_column.items():
            if mask[i]:
                stored_value = stored[c].iloc[i]
                rows.append(
                    {
                        "id": int(stored["id"].iloc[i]),
                        "column": c,
                        "stored": None if pd.isna(stored_value) else stored_value,
                        "derived": derived[c].iloc[i] if c != "generation_id" else int(derived[c].iloc[i]),
                    }
                )
    return pd.DataFrame(rows, columns=["id", "column", "stored", "derived"], dtype=object)


def _repair(conn: Connection, table: str, ids: npt.NDArray[np.int64], derived: pd.DataFrame) -> int:
    previous = bulk_mode(conn)
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE gridmap_fix (id bigint, generation_id int, snap_distance_m float8, town_code text, "
            "village_code text, grid_code text, micro_grid_code text, station_code text, beat_code text, "
            "assign_status text, county_code text) ON COMMIT DROP"
        )
    )
    gen = pd.array(derived["generation_id"].to_numpy(), dtype="Int64")
    gen[derived["generation_id"].to_numpy() < 0] = pd.NA
    columns = [
        Column("id", "int8", ids),
        Column("generation_id", "int4", gen),
        Column("snap_distance_m", "float8", derived["snap_distance_m"].to_numpy()),
        *[Column(c, "text", derived[c].to_numpy(dtype=object)) for c in _REPAIRED],
    ]
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY gridmap_fix FROM STDIN (FORMAT BINARY)") as copy:  # type: ignore[union-attr]
        copy.write(copybin.encode(columns))
    sets = ", ".join(f"{c} = f.{c}" for c in ("generation_id", "snap_distance_m", *_REPAIRED))
    done = conn.execute(sa.text(f"UPDATE {table} t SET {sets} FROM gridmap_fix f WHERE t.id = f.id")).rowcount  # noqa: S608
    conn.execute(sa.text("DROP TABLE gridmap_fix"))
    restore_mode(conn, previous)
    return int(done or 0)


def verify(
    conn: Connection,
    tables: Sequence[str] = POINT_TABLES,
    *,
    repair: bool = False,
    sample: int = 20,
    snap_tolerance_m: float = 50.0,
    actor: str = "cli",
    progress: Progress | None = None,
) -> list[TableCheck]:
    """Check (and with ``repair`` fix, in ``conn``'s transaction) the assignment of every row of ``tables``."""
    cache = AssignerCache(snap_tolerance_m)
    results = []
    for i, table in enumerate(tables):
        if progress is not None:
            progress(table, i, len(tables))
        results.append(check_table(conn, table, cache=cache, sample=sample, repair=repair))
    if progress is not None:
        progress("done", len(tables), len(tables))
    if repair:
        repaired = {r.table: r.repaired for r in results if r.repaired}
        if repaired:
            audit.record(conn, actor, "assignment.repair", ",".join(repaired), **repaired)
    return results
