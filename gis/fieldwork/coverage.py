"""Coverage of the field work: which households were not visited lately, each worker's day against
the visit quota, and how much of a grid its patrols passed.

Households are counted per building (every standard address lies in one; a visit to an address
counts for its building), with the building's ``households`` as the weight. The buildings of a
grid are those assigned to it (``buildings.grid_code``, under the generation in force).

Patrol coverage: the share of the grid's buildings within ``cover_m`` (50 m) of the track made of
the patrol's kept points (flagged points are left out). Distances are measured in the county's
metric projection (EPSG:4549, CGCS2000 Gauss-Krüger 120°E, the one gis.spatial.crs uses), where
planar distance and geodesic distance differ by well under a millimetre per 50 m here; the same
projection serves the shapely check in the tests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.analysis.periods import period_of
from gis.fieldwork.errors import FieldworkNotFound
from gis.fieldwork.patrols import _grid_in_scope, get_patrol
from gis.people.scope import Scope
from gis.spatial.areas import Conn
from gis.spatial.crs import METRIC_EPSG

MAX_DAYS = 3660


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """A county day as [start, end) instants (the one calendar rule, gis.analysis.periods)."""
    return period_of(day, "day")


def _since(days: int, now: dt.datetime) -> dt.datetime:
    if not 0 < days <= MAX_DAYS:
        from gis.fieldwork.errors import FieldworkInputError

        raise FieldworkInputError("days", days, f"must be between 1 and {MAX_DAYS}")
    return now - dt.timedelta(days=days)


# --- households not visited ----------------------------------------------------------------------


def grid_unvisited(conn: Conn, grid: str, days: int, scope: Scope, now: dt.datetime | None = None) -> dict[str, Any]:
    """The grid's buildings, visited or not within ``days`` days; the not-visited ones listed with
    their last visit (None: never)."""
    now = now or dt.datetime.now(dt.UTC)
    since = _since(days, now)
    _grid_in_scope(conn, grid, scope, "grid_code")
    rows = conn.execute(
        sa.text(
            "SELECT b.id, b.code, b.name, b.households, ST_X(b.geom) AS lon, ST_Y(b.geom) AS lat, "
            "(SELECT max(v.at) FROM visits v WHERE v.building_id = b.id AND v.at <= :now) AS last_visit_at "
            "FROM buildings b WHERE b.grid_code = :grid ORDER BY b.id"
        ),
        {"grid": grid, "now": now},
    ).all()
    missed = [r for r in rows if r.last_visit_at is None or r.last_visit_at < since]
    households = sum(r.households for r in rows)
    households_missed = sum(r.households for r in missed)
    return {
        "grid_code": grid,
        "days": days,
        "since": since,
        "buildings": len(rows),
        "buildings_visited": len(rows) - len(missed),
        "buildings_not_visited": len(missed),
        "households": households,
        "households_not_visited": households_missed,
        "share_visited": round((len(rows) - len(missed)) / len(rows), 4) if rows else None,
        "not_visited": [
            {
                "building_id": r.id,
                "code": r.code,
                "name": r.name,
                "households": r.households,
                "last_visit_at": r.last_visit_at,
                "lon": r.lon,
                "lat": r.lat,
            }
            for r in sorted(missed, key=lambda r: (r.last_visit_at is not None, r.last_visit_at or since, r.id))
        ],
    }


# ``buildings.last_visited_at`` is kept by a trigger on visits (migration 0019): one scan, no anti-join.
_UNVISITED_SQL = (
    "SELECT b.id, b.grid_code, b.households, ST_X(b.geom) AS lon, ST_Y(b.geom) AS lat, "
    "b.last_visited_at AS last_visit_at FROM buildings b "
    "WHERE {scope} AND (b.last_visited_at IS NULL OR b.last_visited_at < :since) ORDER BY b.id"
)


def unvisited_rows(conn: Conn, days: int, scope: Scope, now: dt.datetime | None = None) -> tuple[dt.datetime, Any]:
    """Every building inside ``scope`` not visited within ``days`` days (county-wide for the whole
    county): id, grid, households, position and last visit."""
    since = _since(days, now or dt.datetime.now(dt.UTC))
    where, params = scope.where("b")
    rows = conn.execute(sa.text(_UNVISITED_SQL.format(scope=where)), {**params, "since": since}).all()
    return since, rows


def unvisited_by_grid(conn: Conn, days: int, scope: Scope, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per grid code: buildings, buildings not visited within ``days`` days, and their households."""
    since = _since(days, now or dt.datetime.now(dt.UTC))
    where, params = scope.where("b")
    missed = "(b.last_visited_at IS NULL OR b.last_visited_at < :since)"
    rows = conn.execute(
        sa.text(
            f"SELECT b.grid_code, count(*) AS buildings, count(*) FILTER (WHERE {missed}) AS not_visited, "  # noqa: S608
            f"coalesce(sum(b.households) FILTER (WHERE {missed}), 0) AS households_not_visited "
            f"FROM buildings b WHERE {where} AND b.grid_code IS NOT NULL GROUP BY b.grid_code"
        ),
        {**params, "since": since},
    ).all()
    return {
        r.grid_code: {
            "buildings": r.buildings,
            "not_visited": r.not_visited,
            "households_not_visited": int(r.households_not_visited),
            "share_not_visited": round(r.not_visited / r.buildings, 4),
        }
        for r in rows
    }


# --- the visit quota ------------------------------------------------------------------------------


def _person_in_scope(conn: Conn, person_id: int, scope: Scope) -> str:
    where, params = scope.code_where("area_code")
    row = conn.execute(
        sa.text(
            "SELECT p.name, EXISTS (SELECT 1 FROM postings s WHERE s.person_id = p.id AND "  # noqa: S608
            f"{where}) AS inside FROM people p WHERE p.id = :id"
        ),
        {**params, "id": person_id},
    ).first()
    if row is None or not (scope.whole or row.inside):
        raise FieldworkNotFound("person_id", f"no person {person_id}")
    return str(row.name)


def worker_day(conn: Conn, person_id: int, day: dt.date, quota: int, scope: Scope) -> dict[str, Any]:
    """A person's visits on a county day against the quota, by kind, with the four-knows count."""
    name = _person_in_scope(conn, person_id, scope)
    start, end = day_bounds(day)
    rows = conn.execute(
        sa.text(
            "SELECT id, client_id, kind, building_id, address_id, grid_code, at, "
            "knows_people AND knows_family AND knows_address AND knows_situation AS four_knows "
            "FROM visits WHERE person_id = :p AND at >= :s AND at < :e ORDER BY at, id"
        ),
        {"p": person_id, "s": start, "e": end},
    ).mappings()
    visits = [dict(r) for r in rows]
    by_kind: dict[str, int] = {}
    for v in visits:
        by_kind[v["kind"]] = by_kind.get(v["kind"], 0) + 1
    return {
        "person_id": person_id,
        "name": name,
        "day": day,
        "visits": len(visits),
        "quota": quota,
        "met": len(visits) >= quota,
        "short": max(quota - len(visits), 0),
        "buildings": len({v["building_id"] for v in visits}),
        "four_knows_complete": sum(1 for v in visits if v["four_knows"]),
        "by_kind": by_kind,
        "list": visits,
    }


def quota_report(conn: Conn, day: dt.date, quota: int, scope: Scope) -> dict[str, Any]:
    """Every grid worker (专职网格员) posted inside ``scope`` on ``day``: visits made that day
    against the quota, fewest first."""
    start, end = day_bounds(day)
    where, params = scope.code_where("s.area_code")
    rows = conn.execute(
        sa.text(
            "SELECT p.id AS person_id, p.name, array_agg(DISTINCT s.area_code ORDER BY s.area_code) AS areas, "  # noqa: S608
            "(SELECT count(*) FROM visits v WHERE v.person_id = p.id AND v.at >= :s AND v.at < :e) AS visits "
            "FROM postings s JOIN people p ON p.id = s.person_id "
            "WHERE s.role = 'grid_worker' AND s.starts_on <= :day AND (s.ends_on IS NULL OR s.ends_on >= :day) "
            f"AND {where} GROUP BY p.id, p.name ORDER BY visits, p.id"
        ),
        {**params, "s": start, "e": end, "day": day},
    ).all()
    workers = [
        {
            "person_id": r.person_id,
            "name": r.name,
            "areas": list(r.areas),
            "visits": r.visits,
            "met": r.visits >= quota,
            "short": max(quota - r.visits, 0),
        }
        for r in rows
    ]
    met = sum(1 for w in workers if w["met"])
    return {
        "day": day,
        "quota": quota,
        "workers": len(workers),
        "met": met,
        "not_met": len(workers) - met,
        "list": workers,
    }


# --- patrol coverage -------------------------------------------------------------------------------

# Buildings of the grid within :m metres of the tracks of the patrols :ids (kept points only).
# Measuring each building against a whole track (a line of 2,000 points) cost ~25 us a building,
# ~50 ms for a grid of 2,000 buildings on a quiet machine. Instead each track is cut into runs of
# RUN consecutive segments (``pieces``: the same vertices, so the same line); the buildings'
# spatial index gives, for each piece, only the buildings inside the piece's box widened by :m
# (in degrees, with a margin: a building within :m metres of the piece always lies in it); and
# only those are measured, in the metric projection, against that short piece. A building is
# covered when a piece is within :m of it, that is when the track is (the same ST_DWithin test).
RUN = 32
# Degrees of latitude and of longitude at the equator per metre, understated by a sixth so the
# box is always wide enough (a metre is at most 1/110574 degree of latitude; a degree of
# longitude at latitude phi is at least 111,320 cos(phi) m, and one more degree of latitude is added).
_LAT_DEG, _LON_DEG = 1.2 / 110574, 1.2 / 111320
_COVERAGE = sa.text(
    f"""
WITH pts AS MATERIALIZED (
    SELECT patrol_id, geom, row_number() OVER (PARTITION BY patrol_id ORDER BY t) - 1 AS i
    FROM patrol_points WHERE patrol_id = ANY(:ids) AND NOT flagged),
pieces AS MATERIALIZED (
    SELECT ST_Transform(g, :metric) AS m,
           ST_Expand(g, :m * {_LON_DEG} / cos(radians(least(greatest(abs(ST_YMin(g)), abs(ST_YMax(g))) + 1, 89))),
                     :m * {_LAT_DEG}) AS box
    FROM (SELECT CASE WHEN count(*) > 1 THEN ST_MakeLine(geom ORDER BY i) ELSE ST_Collect(geom) END AS g
          -- point i of a track ends piece i / RUN - 1 and starts piece i / RUN
          FROM (SELECT patrol_id, i / {RUN} AS k, i, geom FROM pts
                UNION ALL SELECT patrol_id, i / {RUN} - 1, i, geom FROM pts WHERE i > 0 AND i % {RUN} = 0) s
          GROUP BY patrol_id, k) p),
hit AS MATERIALIZED (
    SELECT DISTINCT b.id FROM pieces c JOIN buildings b ON b.geom && c.box
    WHERE ST_DWithin(ST_Transform(b.geom, :metric), c.m, :m))
SELECT count(*) AS buildings, count(h.id) AS covered, coalesce(sum(b.households), 0) AS households,
       coalesce(sum(b.households) FILTER (WHERE h.id IS NOT NULL), 0) AS hh_covered
FROM buildings b LEFT JOIN hit h ON h.id = b.id WHERE b.grid_code = :grid
"""  # noqa: S608 - only constants are formatted in
)


def _coverage(conn: Conn, grid: str, patrol_ids: list[int], cover_m: float) -> dict[str, Any]:
    row = conn.execute(_COVERAGE, {"ids": patrol_ids, "grid": grid, "m": cover_m, "metric": METRIC_EPSG}).one()
    covered = row.covered if patrol_ids else 0
    return {
        "grid_code": grid,
        "cover_m": cover_m,
        "buildings": row.buildings,
        "buildings_covered": covered,
        "share": round(covered / row.buildings, 4) if row.buildings else None,
        "households": int(row.households),
        "households_covered": int(row.hh_covered) if patrol_ids else 0,
    }


def patrol_coverage(conn: Conn, patrol_id: int, scope: Scope, cover_m: float = 50.0) -> dict[str, Any]:
    """The share of the patrol's grid's buildings within ``cover_m`` of its track."""
    patrol = get_patrol(conn, patrol_id, scope)
    out = _coverage(conn, patrol["grid_code"], [patrol_id], cover_m)
    return {"patrol_id": patrol_id, **out, "points": patrol["point_count"], "flagged": patrol["flagged_count"]}


def grid_patrol_coverage(conn: Conn, grid: str, day: dt.date, scope: Scope, cover_m: float = 50.0) -> dict[str, Any]:
    """The share of a grid's buildings within ``cover_m`` of any of the day's patrols of the grid."""
    _grid_in_scope(conn, grid, scope, "grid_code")
    start, end = day_bounds(day)
    ids = list(
        conn.execute(
            sa.text("SELECT id FROM patrols WHERE grid_code = :g AND started_at >= :s AND started_at < :e ORDER BY id"),
            {"g": grid, "s": start, "e": end},
        ).scalars()
    )
    return {"day": day, "patrols": ids, **_coverage(conn, grid, ids, cover_m)}
