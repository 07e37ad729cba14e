"""Set-based reassignment of stored points after a boundary change.

Publishing a redraw changes the assignment only of points near the changed polygons, so only
those are touched: one UPDATE per table joins the points inside the changed extent (buffered by
the snap tolerance) with the finest layer and the beats of the generation, walks the parent
codes up with hash joins, and writes the rows whose assignment differs. Points that no polygon
covers (snapping, outside the county) are few; they fall back to the SQL function
``gridmap_assign`` so that every rule, the edge rule included (smallest code wins), is the one
gis/sql/assign.sql defines.

``reassign_extent`` (the default, used by publishing) reads the points in the extent, assigns
them in process with gis.spatial.assign's STRtree twin of the SQL rules, and writes only the rows that
changed with one UPDATE ... FROM unnest(...) per table: a town's ~35,000 points take well under
a second. ``reassign_extent_sql`` does the same join inside PostgreSQL (kept as the reference and
for callers without the shapely stack), ``reassign_naive`` row by row.

Which rows move is the rule of gis/spatial/genrule.py: open work (incidents not closed or rejected,
hazards not rectified, all buildings and addresses) follows the generation in force; records that
have ended keep the assignment they were handled under.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import sqlalchemy as sa

from gis.core.predicates import in_generation
from gis.core.vocab import ADMIN_CHAIN, ASSIGN_COLUMNS
from gis.spatial.areas import Conn
from gis.spatial.assign import Assigner
from gis.spatial.genrule import open_rows_sql

COLUMN = {"micro_grid": "micro_grid_code", "grid": "grid_code", "village": "village_code", "town": "town_code"}
# Table -> extra filter: which rows follow boundary changes (the open work of each table).
POINT_TABLES: dict[str, str] = {
    table: open_rows_sql(table, "t") for table in ("buildings", "addresses", "hazards", "incidents")
}


class ReassignError(ValueError):
    pass


@dataclass(frozen=True)
class ReassignResult:
    table: str
    examined: int
    changed: int


def finest_layer(conn: Conn, generation: int) -> str | None:
    for layer in ADMIN_CHAIN:
        found = conn.execute(
            sa.text(f"SELECT 1 FROM areas WHERE layer = :l AND {in_generation()} LIMIT 1"),  # noqa: S608
            {"l": layer, "g": generation},
        ).scalar()
        if found:
            return layer
    return None


def _new_assignment_sql(finest: str) -> str:
    """SELECT of the new assignment of each row of the temporary table ``_ra_pts`` that the finest
    layer and a beat cover (smallest code on shared edges), parents by hash joins on ``_ra_cur``."""
    chain = ADMIN_CHAIN[ADMIN_CHAIN.index(finest) :]
    exprs = {finest: "f.code"}
    joins = []
    for depth, (child, parent) in enumerate(zip(chain, chain[1:], strict=False)):
        alias = f"p{depth}"
        joins.append(f"LEFT JOIN _ra_cur {alias} ON {alias}.layer = '{child}' AND {alias}.code = {exprs[child]}")
        exprs[parent] = f"{alias}.parent_code"
    cols = ", ".join(f"{exprs.get(layer, 'NULL')}::text AS {COLUMN[layer]}" for layer in ADMIN_CHAIN)
    in_gen = in_generation("a")
    # Layer and column names come from the constants above; values are bound parameters.
    return f"""
SELECT p.id, {cols}, bp.parent_code::text AS station_code, b.code::text AS beat_code
FROM _ra_pts p
JOIN LATERAL (SELECT a.code FROM areas a WHERE a.layer = '{finest}' AND {in_gen} AND ST_Intersects(a.geom, p.geom)
              ORDER BY a.code LIMIT 1) f ON TRUE
JOIN LATERAL (SELECT a.code FROM areas a WHERE a.layer = 'beat' AND {in_gen} AND ST_Intersects(a.geom, p.geom)
              ORDER BY a.code LIMIT 1) b ON TRUE
LEFT JOIN _ra_cur bp ON bp.layer = 'beat' AND bp.code = b.code
{" ".join(joins)}
"""  # noqa: S608


_CHANGED = " OR ".join(f"t.{c} IS DISTINCT FROM n.{c}" for c in ASSIGN_COLUMNS[:6]) + (
    " OR t.assign_status IS DISTINCT FROM 'inside'"
)


def _drop_temp(conn: Conn) -> None:
    conn.execute(sa.text("DROP TABLE IF EXISTS _ra_pts, _ra_new, _ra_cur"))


def reassign_extent_sql(
    conn: Conn,
    generation: int,
    extent_wkb: bytes,
    *,
    tables: dict[str, str] | None = None,
    snap_tolerance_m: float = 50.0,
) -> list[ReassignResult]:
    """Reassign the points of each table within ``extent_wkb`` (EPSG:4326) under ``generation``.

    ``generation`` must be the generation in force at the transaction's ``now()`` (the one the
    fallback function uses): call this inside the publishing transaction, after publishing.
    Rows whose assignment did not change are not written. Intermediate results go to temporary
    tables that are analysed, so the planner sees real row counts (CTEs would be estimated at one
    row and joined by nested loops).
    """
    in_force = conn.execute(sa.text("SELECT gridmap_generation_at(now())")).scalar()
    if in_force != generation:
        raise ReassignError(f"generation {generation} is not in force now (generation {in_force} is)")
    finest = finest_layer(conn, generation)
    if finest is None:
        raise ReassignError(f"generation {generation} has no town, village, grid or micro-grid polygons")
    for table in tables or POINT_TABLES:
        if table not in POINT_TABLES:
            raise ReassignError(f"{table!r} is not a point table; use one of {', '.join(POINT_TABLES)}")
    extent = conn.execute(
        sa.text(
            "SELECT ST_AsBinary(ST_Buffer(ST_CollectionExtract(ST_MakeValid(ST_GeomFromWKB(:e, 4326)), 3)"
            "::geography, :tol)::geometry)"
        ),
        {"e": extent_wkb, "tol": snap_tolerance_m},
    ).scalar_one()
    _drop_temp(conn)
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE _ra_cur AS SELECT a.layer, a.code, a.parent_code FROM areas a "  # noqa: S608
            "WHERE a.layer IN ('micro_grid', 'grid', 'village', 'beat') "
            f"AND {in_generation('a')}"
        ),
        {"g": generation},
    )
    conn.execute(sa.text("ANALYZE _ra_cur"))
    results = []
    for table, extra in (tables or POINT_TABLES).items():
        conn.execute(
            sa.text(
                f"CREATE TEMP TABLE _ra_pts AS SELECT t.id, t.geom FROM {table} t "  # noqa: S608
                f"WHERE t.geom && ST_GeomFromWKB(:e, 4326) AND ST_Intersects(t.geom, ST_GeomFromWKB(:e, 4326)) "
                f"AND {extra}"
            ),
            {"e": extent},
        )
        conn.execute(sa.text("ANALYZE _ra_pts"))
        conn.execute(sa.text(f"CREATE TEMP TABLE _ra_new AS {_new_assignment_sql(finest)}"), {"g": generation})
        conn.execute(sa.text("ANALYZE _ra_new"))
        changed = conn.execute(
            sa.text(
                f"UPDATE {table} t SET town_code = n.town_code, village_code = n.village_code, "  # noqa: S608
                "grid_code = n.grid_code, micro_grid_code = n.micro_grid_code, station_code = n.station_code, "
                "beat_code = n.beat_code, generation_id = :g, assign_status = 'inside', snap_distance_m = NULL "
                f"FROM _ra_new n WHERE t.id = n.id AND ({_CHANGED})"
            ),
            {"g": generation},
        )
        # Points no polygon covers (snapping, outside the county): the SQL function decides.
        fallback = conn.execute(
            sa.text(
                f"UPDATE {table} t SET ({', '.join(ASSIGN_COLUMNS)}) = "  # noqa: S608
                "(SELECT a.* FROM gridmap_assign(t.geom, now()) a) FROM _ra_pts p "
                "WHERE t.id = p.id AND NOT EXISTS (SELECT 1 FROM _ra_new n WHERE n.id = p.id)"
            )
        )
        examined = conn.execute(sa.text("SELECT count(*) FROM _ra_pts")).scalar_one()
        n_changed = int(getattr(changed, "rowcount", 0) or 0) + int(getattr(fallback, "rowcount", 0) or 0)
        results.append(ReassignResult(table, int(examined), n_changed))
        conn.execute(sa.text("DROP TABLE _ra_pts, _ra_new"))
    _drop_temp(conn)
    return results


def reassign_naive(conn: Conn, generation: int, *, tables: dict[str, str] | None = None) -> list[ReassignResult]:
    """Every row through ``gridmap_assign`` one by one: the slow reference the benchmark compares with."""
    in_force = conn.execute(sa.text("SELECT gridmap_generation_at(now())")).scalar()
    if in_force != generation:
        raise ReassignError(f"generation {generation} is not in force now (generation {in_force} is)")
    results = []
    for table, extra in (tables or POINT_TABLES).items():
        cols = ", ".join(ASSIGN_COLUMNS)
        result = conn.execute(
            sa.text(
                f"UPDATE {table} t SET ({cols}) = (SELECT a.* FROM gridmap_assign(t.geom, now()) a) "  # noqa: S608
                f"WHERE {extra}"
            )
        )
        n = int(getattr(result, "rowcount", 0) or 0)
        results.append(ReassignResult(table, n, n))
    return results


_UNNEST_UPDATE = """
UPDATE {table} t SET town_code = n.town_code, village_code = n.village_code, grid_code = n.grid_code,
    micro_grid_code = n.micro_grid_code, station_code = n.station_code, beat_code = n.beat_code,
    generation_id = n.generation_id, assign_status = n.assign_status, snap_distance_m = n.snap_distance_m
FROM unnest(CAST(:id AS bigint[]), CAST(:town_code AS text[]), CAST(:village_code AS text[]),
            CAST(:grid_code AS text[]), CAST(:micro_grid_code AS text[]), CAST(:station_code AS text[]),
            CAST(:beat_code AS text[]), CAST(:generation_id AS integer[]), CAST(:assign_status AS text[]),
            CAST(:snap_distance_m AS double precision[]))
     AS n(id, town_code, village_code, grid_code, micro_grid_code, station_code, beat_code, generation_id,
          assign_status, snap_distance_m)
WHERE t.id = n.id
"""


def _column(values: np.ndarray) -> list[object]:
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in values.tolist()]


def reassign_extent(
    conn: Conn,
    generation: int,
    extent_wkb: bytes,
    *,
    tables: dict[str, str] | None = None,
    snap_tolerance_m: float = 50.0,
    assigner: Assigner | None = None,
) -> list[ReassignResult]:
    """Reassign the points of each table within ``extent_wkb`` (EPSG:4326, buffered by the snap
    tolerance) under ``generation``; only rows whose assignment changes are written."""
    for table in tables or POINT_TABLES:
        if table not in POINT_TABLES:
            raise ReassignError(f"{table!r} is not a point table; use one of {', '.join(POINT_TABLES)}")
    assigner = assigner or Assigner.from_db(conn, generation, snap_tolerance_m)
    if assigner.generation != generation:
        raise ReassignError(f"the assigner is for generation {assigner.generation}, not {generation}")
    # Buffered in degrees, generously (a degree is over 90 km here): more points are examined,
    # none that could snap is missed.
    area = shapely.buffer(shapely.make_valid(shapely.from_wkb(extent_wkb)), snap_tolerance_m / 90_000.0)
    shapely.prepare(area)
    extent = shapely.to_wkb(shapely.envelope(area))
    results = []
    current = ", ".join(f"t.{c}" for c in ASSIGN_COLUMNS[:6]) + ", t.assign_status"
    for table, extra in (tables or POINT_TABLES).items():
        # The index finds the bounding box; the exact extent test is vectorised in shapely.
        rows = conn.execute(
            sa.text(
                f"SELECT t.id, ST_X(t.geom) AS x, ST_Y(t.geom) AS y, {current} FROM {table} t "  # noqa: S608
                f"WHERE t.geom && ST_GeomFromWKB(:e, 4326) AND {extra}"
            ),
            {"e": extent},
        ).all()
        if not rows:
            results.append(ReassignResult(table, 0, 0))
            continue
        data = np.empty((len(rows), len(rows[0])), dtype=object)
        data[:] = [tuple(r) for r in rows]
        x, y = data[:, 1].astype(np.float64), data[:, 2].astype(np.float64)
        keep = shapely.intersects_xy(area, x, y)
        data, x, y = data[keep], x[keep], y[keep]
        new = assigner.assign(x, y)
        changed = np.zeros(len(data), dtype=bool)
        for k, col in enumerate((*ASSIGN_COLUMNS[:6], "assign_status")):
            changed |= np.asarray([a != b for a, b in zip(getattr(new, col), data[:, 3 + k], strict=True)])
        idx = np.flatnonzero(changed)
        if len(idx):
            params: dict[str, object] = {"id": [int(i) for i in data[idx, 0]]}
            for col in ASSIGN_COLUMNS:
                params[col] = _column(np.asarray(getattr(new, col))[idx])
            params["generation_id"] = [generation] * len(idx)
            conn.execute(sa.text(_UNNEST_UPDATE.format(table=table)), params)
        results.append(ReassignResult(table, int(len(data)), int(len(idx))))
    return results
