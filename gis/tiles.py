"""Mapbox vector tiles (MVT) of every public layer, made by PostGIS in one query per tile.

Tiles are Web Mercator (EPSG:3857) XYZ tiles as QGIS, MapLibre and Leaflet.VectorGrid expect.
Boundary tiles carry code, name, parent code and households. Point layers carry a few display
attributes and never personal data (tiles are cached and shared freely).

At low zoom a tile can cover the whole county and a year of incidents; sending every point would
make tiles of many megabytes. Up to ``CLUSTER_MAX_ZOOM`` points are therefore aggregated per
screen pixel (a 16 x 16 cell of the 4096-unit tile, i.e. one pixel of a 256-pixel tile): one
feature per occupied pixel with a ``count`` attribute, placed at the centre of its pixel.
The pixel position is computed with plain arithmetic on longitude/latitude (the Web Mercator
formulas) instead of ``ST_Transform`` per point, which keeps a county tile of a year's incidents
fast.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import sqlalchemy as sa

from gis.areas import IN_GENERATION, Conn, current_generation, generation_at
from gis.export import AREA_LAYERS, POINT_LAYERS, ExportError, time_column

EXTENT = 4096
BUFFER = 64
CLUSTER_CELL = 16  # tile units per cluster cell: one pixel of a 256-pixel tile
CLUSTER_MAX_ZOOM = 14
MAX_ZOOM = 24
WEB_MERCATOR_HALF = 20037508.342789244  # half the side of the Web Mercator square, metres
EARTH_RADIUS = 6378137.0

# Attributes that point tiles carry at full detail (no personal data).
POINT_TILE_COLUMNS = {
    "buildings": ("code", "name", "floors", "is_rental", "risk_level", "grid_code"),
    "addresses": ("full_text", "precision", "grid_code"),
    "hazards": ("category", "severity", "status", "grid_code"),
    "incidents": ("category", "status", "escalation_level", "grid_code"),
}


class TileError(ExportError):
    """A tile request names an unknown layer, a tile outside the grid, or a bad time window."""


@dataclass(frozen=True)
class TileRequest:
    layer: str
    z: int
    x: int
    y: int
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    as_of: dt.datetime | None = None


def check_tile(layer: str, z: int, x: int, y: int) -> None:
    if layer not in AREA_LAYERS and layer not in POINT_LAYERS:
        raise TileError(f"unknown layer {layer!r}; layers are {', '.join([*AREA_LAYERS, *POINT_LAYERS])}")
    if not 0 <= z <= MAX_ZOOM:
        raise TileError(f"zoom {z} is outside 0..{MAX_ZOOM}")
    limit = 2**z
    if not (0 <= x < limit and 0 <= y < limit):
        raise TileError(f"tile x={x} y={y} does not exist at zoom {z} (0..{limit - 1})")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web Mercator bounds (xmin, ymin, xmax, ymax) of an XYZ tile, as ST_TileEnvelope gives them."""
    size = 2 * WEB_MERCATOR_HALF / 2**z
    xmin = -WEB_MERCATOR_HALF + x * size
    ymax = WEB_MERCATOR_HALF - y * size
    return xmin, ymax - size, xmin + size, ymax


def _lonlat_window(z: int, x: int, y: int) -> dict[str, float]:
    """The tile plus its buffer in longitude/latitude, for the spatial index."""
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    pad = (xmax - xmin) * BUFFER / EXTENT
    lon0, lon1 = (xmin - pad) / EARTH_RADIUS, (xmax + pad) / EARTH_RADIUS
    lat0 = 2 * math.atan(math.exp(max(ymin - pad, -WEB_MERCATOR_HALF) / EARTH_RADIUS)) - math.pi / 2
    lat1 = 2 * math.atan(math.exp(min(ymax + pad, WEB_MERCATOR_HALF) / EARTH_RADIUS)) - math.pi / 2
    return {
        "w": math.degrees(lon0),
        "s": math.degrees(lat0),
        "e": math.degrees(lon1),
        "n": math.degrees(lat1),
    }


_WINDOW = "geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)"


def _area_sql(req: TileRequest, conn: Conn) -> tuple[str, dict[str, object]]:
    if req.start or req.end:
        raise TileError(f"layer {req.layer!r} is a boundary layer; use as_of, not start/end")
    generation = current_generation(conn) if req.as_of is None else generation_at(conn, req.as_of)
    sql = f"""
        WITH t AS (
          SELECT code, name, parent_code, households,
                 ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                   AS geom
          FROM areas WHERE layer = :area_layer AND {IN_GENERATION} AND {_WINDOW}
        )
        SELECT ST_AsMVT(t.*, :name, {EXTENT}, 'geom') FROM t WHERE geom IS NOT NULL
    """  # noqa: S608 - identifiers are constants of this module
    return sql, {"area_layer": AREA_LAYERS[req.layer], "g": generation if generation is not None else -1}


def _time_filter(req: TileRequest, params: dict[str, object]) -> str:
    column = time_column(req.layer)
    if (req.start or req.end) and column is None:
        raise TileError(f"layer {req.layer!r} has no time column; start/end apply to incidents and hazards")
    if req.start and req.end and req.start >= req.end:
        raise TileError(f"start {req.start.isoformat()} is not before end {req.end.isoformat()}")
    clauses = []
    if req.start is not None:
        clauses.append(f"{column} >= :start")
        params["start"] = req.start
    if req.end is not None:
        clauses.append(f"{column} < :end")
        params["end"] = req.end
    return "".join(f" AND {c}" for c in clauses)


def _point_sql(req: TileRequest) -> tuple[str, dict[str, object]]:
    if req.as_of is not None:
        raise TileError(f"as_of applies to boundary layers, not {req.layer!r}")
    params: dict[str, object] = {}
    when = _time_filter(req, params)
    table = req.layer
    if req.z > CLUSTER_MAX_ZOOM:
        columns = ", ".join(POINT_TILE_COLUMNS[table])
        stamp = f", {time_column(table)}::text AS {time_column(table)}" if time_column(table) else ""
        sql = f"""
            WITH t AS (
              SELECT id, {columns}{stamp},
                     ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                       AS geom
              FROM {table} WHERE {_WINDOW}{when}
            )
            SELECT ST_AsMVT(t.*, :name, {EXTENT}, 'geom', 'id') FROM t WHERE geom IS NOT NULL
        """  # noqa: S608 - identifiers are constants of this module
        return sql, params
    xmin, _, xmax, ymax = tile_bounds(req.z, req.x, req.y)
    scale = EXTENT / (xmax - xmin)
    params.update({"xmin": xmin, "ymax": ymax, "scale": scale, "r": EARTH_RADIUS})
    # Cell of each point from lon/lat with the Web Mercator formulas x = R*lon, y = R*ln(tan(pi/4 + lat/2)),
    # scaled to tile units; the feature sits at the cell's centre (no per-row ST_Transform, no avg()).
    cx = f"floor((:r * radians(ST_X(geom)) - :xmin) * :scale / {CLUSTER_CELL})::int"
    cy = f"floor((:ymax - :r * ln(tan(pi() / 4 + radians(ST_Y(geom)) / 2))) * :scale / {CLUSTER_CELL})::int"
    half = CLUSTER_CELL // 2
    sql = f"""
        SELECT ST_AsMVT(t.*, :name, {EXTENT}, 'geom') FROM (
          SELECT count(*)::int AS count, CASE WHEN count(*) = 1 THEN min(id) END AS point_id,
                 ST_MakePoint(cx * {CLUSTER_CELL} + {half}, cy * {CLUSTER_CELL} + {half}) AS geom
          FROM (SELECT id, {cx} AS cx, {cy} AS cy FROM {table} WHERE {_WINDOW}{when}) p
          GROUP BY cx, cy
        ) t
    """  # noqa: S608 - identifiers are constants of this module
    return sql, params


def render_tile(conn: Conn, req: TileRequest) -> bytes:
    """The MVT bytes of one tile (empty bytes when nothing is in it); the MVT layer is named after the layer."""
    check_tile(req.layer, req.z, req.x, req.y)
    if req.layer in AREA_LAYERS:
        sql, params = _area_sql(req, conn)
    else:
        sql, params = _point_sql(req)
    params.update({"z": req.z, "x": req.x, "y": req.y, "name": req.layer, **_lonlat_window(req.z, req.x, req.y)})
    data = conn.execute(sa.text(sql), params).scalar()
    return bytes(data) if data is not None else b""
