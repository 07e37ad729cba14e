"""Repeat locations (重复发生地): addresses and buildings with ``min_count`` or more incidents
(default 3) in the ``days`` days (default 30) before ``end`` (default now).

How an incident is tied to a place: incidents carry ``address_id`` when intake geocoded their
address text (``gis.incidents.intake``); most arrive with coordinates only (the demo's all do).
So an incident's address is its ``address_id`` if set, else the nearest standard address within
``radius_m`` metres (default 30), else none. Distances are metres on the local tangent plane at the
county's latitude (degrees scaled by the WGS-84 metres per degree at 30.84° N): within the county
(30.6-31.1° N) this differs from the geodesic distance by under 0.5 %, 15 cm at 30 m, and costs a
third of PostGIS ``geography``, which matters for the ~20,000 incidents of a demo month. Its building
is that address's ``building_id``. Incidents with no address within the radius are grouped by
position instead: ``ST_SnapToGrid`` cells of ``radius_m`` (in degrees at the county's latitude),
reported as kind ``position`` at the snapped point.

The filter (category, source, status, areas, ...) and the caller's scope select the incidents, so
a scoped key counts only incidents inside its scope.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa

from gis.analysis.units import AnalysisError
from gis.core.vocab import COUNTY_TZ
from gis.incidents.filter import IncidentFilter
from gis.spatial.areas import Conn

KINDS = ("address", "building", "position")
DEFAULT_DAYS, MAX_DAYS = 30, 366
DEFAULT_MIN_COUNT = 3
DEFAULT_RADIUS_M, MAX_RADIUS_M = 30.0, 200.0
MAX_IDS = 50  # incident ids listed per location; ``count`` is always the full number
LAT = math.radians(30.84)  # the county's latitude
# WGS-84 metres per degree of latitude and of longitude there (the usual series in the latitude).
M_PER_DEG_LAT = 111_132.92 - 559.82 * math.cos(2 * LAT) + 1.175 * math.cos(4 * LAT)
M_PER_DEG_LON = 111_412.84 * math.cos(LAT) - 93.5 * math.cos(3 * LAT)


def _check(days: int, min_count: int, radius_m: float, kinds: tuple[str, ...]) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise AnalysisError("days", days, f"days: {days} is not in 1..{MAX_DAYS}")
    if not 2 <= min_count <= 1000:
        raise AnalysisError("min_count", min_count, f"min_count: {min_count} is not in 2..1000")
    if not (0 < radius_m <= MAX_RADIUS_M):  # also refuses NaN
        raise AnalysisError("radius_m", radius_m, f"radius_m: {radius_m} is not in (0, {MAX_RADIUS_M:g}]")
    for kind in kinds:
        if kind not in KINDS:
            raise AnalysisError("kind", kind, f"kind: {kind!r} is not one of {', '.join(KINDS)}")


_SQL = """
WITH sel AS (
    SELECT i.id, i.reported_at, i.category, i.address_id, i.grid_code, i.geom
    FROM incidents i WHERE {where}
), res AS (
    SELECT s.*, COALESCE(s.address_id, near.id) AS addr
    FROM sel s LEFT JOIN LATERAL (
        SELECT a.id FROM addresses a
        CROSS JOIN LATERAL (
            SELECT sqrt(power((ST_X(a.geom) - ST_X(s.geom)) * :m_lon, 2)
                        + power((ST_Y(a.geom) - ST_Y(s.geom)) * :m_lat, 2)) AS metres
        ) d
        WHERE s.address_id IS NULL
          AND a.geom && ST_Expand(s.geom, :dlon, :dlat)
          AND d.metres <= :radius
        ORDER BY d.metres, a.id
        LIMIT 1
    ) near ON TRUE
), keyed AS (
    SELECT r.*, ad.building_id FROM res r LEFT JOIN addresses ad ON ad.id = r.addr
), grouped AS (
    SELECT 'address' AS kind, addr::text AS key, count(*) AS n, min(reported_at) AS first_at,
           max(reported_at) AS last_at, array_agg(DISTINCT category) AS categories,
           (array_agg(id ORDER BY reported_at DESC))[1:{max_ids}] AS ids, min(grid_code) AS grid_code,
           NULL::geometry AS cell
    FROM keyed WHERE addr IS NOT NULL GROUP BY addr HAVING count(*) >= :min_count
    UNION ALL
    SELECT 'building', building_id::text, count(*), min(reported_at), max(reported_at),
           array_agg(DISTINCT category), (array_agg(id ORDER BY reported_at DESC))[1:{max_ids}],
           min(grid_code), NULL::geometry
    FROM keyed WHERE building_id IS NOT NULL GROUP BY building_id HAVING count(*) >= :min_count
    UNION ALL
    SELECT 'position', NULL, count(*), min(reported_at), max(reported_at),
           array_agg(DISTINCT category), (array_agg(id ORDER BY reported_at DESC))[1:{max_ids}],
           min(grid_code), ST_SnapToGrid(geom, :cell_lon, :cell_lat)
    FROM keyed WHERE addr IS NULL GROUP BY ST_SnapToGrid(geom, :cell_lon, :cell_lat) HAVING count(*) >= :min_count
)
SELECT g.kind, g.key, g.n, g.first_at, g.last_at, g.categories, g.ids, g.grid_code,
       CASE g.kind WHEN 'address' THEN ad.full_text WHEN 'building' THEN coalesce(b.name, b.code) END AS label,
       CASE g.kind WHEN 'building' THEN b.code END AS building_code,
       ST_X(coalesce(ad.geom, b.geom, g.cell)) AS lon, ST_Y(coalesce(ad.geom, b.geom, g.cell)) AS lat
FROM grouped g
LEFT JOIN addresses ad ON g.kind = 'address' AND ad.id = g.key::bigint
LEFT JOIN buildings b ON g.kind = 'building' AND b.id = g.key::bigint
WHERE g.kind = ANY(:kinds)
ORDER BY g.n DESC, g.last_at DESC, g.kind, g.key
LIMIT :limit
"""


def repeat_locations(
    conn: Conn,
    flt: IncidentFilter,
    *,
    end: dt.datetime | None = None,
    days: int = DEFAULT_DAYS,
    min_count: int = DEFAULT_MIN_COUNT,
    radius_m: float = DEFAULT_RADIUS_M,
    kinds: tuple[str, ...] = KINDS,
    limit: int = 500,
) -> dict[str, Any]:
    """Places with ``min_count``+ incidents selected by ``flt`` in [end - days, end), most first."""
    _check(days, min_count, radius_m, kinds)
    if flt.start is not None or flt.window:
        field = "window" if flt.window else "start"
        raise AnalysisError(field, str(flt.window or flt.start), f"{field}: repeats look back `days` from `end`")
    stop = end or flt.end or dt.datetime.now(dt.UTC)
    start = stop - dt.timedelta(days=days)
    where, params = flt.replace(start=start, end=stop, window=None).where("i")
    dlat = radius_m / M_PER_DEG_LAT
    dlon = radius_m / M_PER_DEG_LON
    sql = _SQL.format(where=where, max_ids=MAX_IDS)
    rows = conn.execute(
        sa.text(sql),
        {
            **params,
            # The index box is widened by a tenth: it must hold the whole radius at every latitude of the county.
            "dlon": dlon * 1.1,
            "dlat": dlat * 1.1,
            "m_lon": M_PER_DEG_LON,
            "m_lat": M_PER_DEG_LAT,
            "radius": radius_m,
            "cell_lon": dlon,
            "cell_lat": dlat,
            "min_count": min_count,
            "kinds": list(kinds),
            "limit": limit,
        },
    ).mappings()
    out = [
        {
            "kind": r["kind"],
            "id": None if r["kind"] == "position" else int(r["key"]),
            "label": r["label"],
            "building_code": r["building_code"],
            "count": int(r["n"]),
            "first_at": r["first_at"].astimezone(COUNTY_TZ).isoformat(),
            "last_at": r["last_at"].astimezone(COUNTY_TZ).isoformat(),
            "categories": sorted(r["categories"]),
            "incident_ids": list(r["ids"]),
            "grid_code": r["grid_code"],
            "lon": float(r["lon"]),
            "lat": float(r["lat"]),
        }
        for r in rows
    ]
    return {
        "start": start.astimezone(COUNTY_TZ).isoformat(),
        "end": stop.astimezone(COUNTY_TZ).isoformat(),
        "days": days,
        "min_count": min_count,
        "radius_m": radius_m,
        "locations": out,
    }
