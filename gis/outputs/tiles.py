"""Mapbox vector tiles (MVT) of every public layer, made by PostGIS in one query per tile.

Tiles are Web Mercator (EPSG:3857) XYZ tiles as QGIS, MapLibre and Leaflet.VectorGrid expect.
Boundary tiles carry code, name, parent code and households. Point layers carry a few display
attributes and never personal data (tiles are cached and shared freely).

At low zoom a tile can cover the whole county and a year of incidents; sending every point would
make tiles of many megabytes. Up to ``CLUSTER_MAX_ZOOM`` points are therefore aggregated per
screen pixel (a 16 x 16 cell of the 4096-unit tile, i.e. one pixel of a 256-pixel tile): one
feature per occupied pixel with a ``count`` attribute, placed at the centre of its pixel.
The pixel is a bit shift of the point's Web Mercator position in integer fractions of the world
(``merc_x``/``merc_y``, see gis.core.pointmodels): incidents store it (generated columns, covered by the
time-window index, so a county tile of a year is an index-only scan with integer arithmetic);
the other point layers compute it from longitude/latitude with the same expression.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import sqlalchemy as sa

from gis.core.pointmodels import MERC_BITS, MERC_X_SQL, MERC_Y_SQL
from gis.incidents.filter import IncidentFilter
from gis.outputs.exportquery import AREA_LAYERS, POINT_LAYERS, ExportError, point_filter, time_column
from gis.spatial.areas import IN_GENERATION, Conn, current_generation, generation_at

EXTENT = 4096
BUFFER = 64
CLUSTER_CELL = 16  # tile units per cluster cell: one pixel of a 256-pixel tile
CLUSTER_CELLS = EXTENT // CLUSTER_CELL  # cells along a tile side: 256
CLUSTER_CELL_BITS = CLUSTER_CELLS.bit_length() - 1  # a power of two: 2**8
CLUSTER_MAX_ZOOM = 14
MAX_ZOOM = 24
# Point layers whose rows store merc_x/merc_y (the others compute them per row).
STORED_POSITION = frozenset({"incidents"})
# From this zoom on a tile is a small part of a county and the GiST index on geom narrows the rows
# worth reading. Below it a tile spans much of the county, the whole time window is read anyway,
# and testing each geometry against the tile added 20-25% to a county tile (measured, issue 9).
SPATIAL_INDEX_MIN_ZOOM = 12
if CLUSTER_MAX_ZOOM > MERC_BITS - CLUSTER_CELL_BITS:
    raise RuntimeError("the stored Web Mercator position is too coarse for cells at CLUSTER_MAX_ZOOM")
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
    incidents: IncidentFilter | None = None  # the incidents layer's filter (gis.incidents.filter)


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
    if req.start or req.end or (req.incidents is not None and not req.incidents.unscoped()):
        raise TileError(f"layer {req.layer!r} is a boundary layer; use as_of, not start/end or incident filters")
    # A scoped caller's boundary tiles hold the units inside the scope.
    in_scope, scope_params = (req.incidents or IncidentFilter()).scope.code_where("code")
    generation = current_generation(conn) if req.as_of is None else generation_at(conn, req.as_of)
    sql = f"""
        WITH t AS (
          SELECT code, name, parent_code, households,
                 ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                   AS geom
          FROM areas WHERE layer = :area_layer AND {IN_GENERATION} AND {_WINDOW} AND {in_scope}
        )
        SELECT ST_AsMVT(t.*, :name, {EXTENT}, 'geom') FROM t WHERE geom IS NOT NULL
    """  # noqa: S608 - identifiers are constants of this module
    generation_id = generation if generation is not None else -1
    return sql, {"area_layer": AREA_LAYERS[req.layer], "g": generation_id, **scope_params}


def _time_filter(req: TileRequest, params: dict[str, object]) -> str:
    where, values = point_filter(req.layer, req.start, req.end, req.incidents, error=TileError)
    params.update(values)
    return "" if where == "TRUE" else f" AND {where}"


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
    # A cell at zoom z is a pixel of the 2**(z+8)-pixel world: drop the finer bits of the position.
    shift = MERC_BITS - CLUSTER_CELL_BITS - req.z
    cx0, cy0 = req.x * CLUSTER_CELLS, req.y * CLUSTER_CELLS
    params.update({"shift": shift, "cx0": cx0, "cy0": cy0})
    stored = table in STORED_POSITION
    mx, my = ("merc_x", "merc_y") if stored else (f"({MERC_X_SQL})", f"({MERC_Y_SQL})")
    if _reads_whole_window(req):
        # The tile plus its buffer in whole cells, as integer bounds on the stored position: no
        # geometry is read, so the time-window index answers alone (render_tile first makes sure
        # that the tile holds any point at all, which that index cannot tell).
        pad = BUFFER // CLUSTER_CELL
        params.update(
            {
                "mx0": (cx0 - pad) << shift,
                "mx1": (cx0 + CLUSTER_CELLS + pad) << shift,
                "my0": (cy0 - pad) << shift,
                "my1": (cy0 + CLUSTER_CELLS + pad) << shift,
            }
        )
        where = "merc_x >= :mx0 AND merc_x < :mx1 AND merc_y >= :my0 AND merc_y < :my1"
    else:
        # The geometry test alone, so that the GiST index serves small tiles; PostGIS estimates its
        # selectivity well. (With the integer bounds added the planner would multiply two
        # estimates of the same restriction and expect a nearly empty tile.)
        where = _WINDOW
    half = CLUSTER_CELL // 2
    # The feature sits at its cell's centre (no avg() of positions, no per-row ST_Transform).
    sql = f"""
        SELECT ST_AsMVT(t.*, :name, {EXTENT}, 'geom') FROM (
          SELECT count(*)::int AS count, CASE WHEN count(*) = 1 THEN min(id) END AS point_id,
                 ST_MakePoint(cx * {CLUSTER_CELL} + {half}, cy * {CLUSTER_CELL} + {half}) AS geom
          FROM (SELECT id, ({mx} >> :shift) - :cx0 AS cx, ({my} >> :shift) - :cy0 AS cy
                FROM {table} WHERE {where}{when}) p
          GROUP BY cx, cy
        ) t
    """  # noqa: S608 - identifiers are constants of this module
    return sql, params


def _any_in_tile_sql(table: str) -> str:
    return f"SELECT EXISTS (SELECT FROM {table} WHERE {_WINDOW})"  # noqa: S608 - table is a checked layer name


def _reads_whole_window(req: TileRequest) -> bool:
    """Whether the tile query reads every point of the time window, wherever it lies."""
    return req.layer in STORED_POSITION and req.z < SPATIAL_INDEX_MIN_ZOOM


def render_tile(conn: Conn, req: TileRequest) -> bytes:
    """The MVT bytes of one tile (empty bytes when nothing is in it); the MVT layer is named after the layer."""
    check_tile(req.layer, req.z, req.x, req.y)
    if req.layer in AREA_LAYERS:
        sql, params = _area_sql(req, conn)
    else:
        sql, params = _point_sql(req)
    params.update({"z": req.z, "x": req.x, "y": req.y, "name": req.layer, **_lonlat_window(req.z, req.x, req.y)})
    if _reads_whole_window(req) and not conn.execute(sa.text(_any_in_tile_sql(req.layer)), params).scalar():
        # A tile away from all points (beside the county): one GiST probe (< 1 ms) instead of a
        # scan of the time window (~35-50 ms for a year). A statement of its own, because as part
        # of the tile query the planner may start parallel workers before evaluating it.
        return b""
    data = conn.execute(sa.text(sql), params).scalar()
    return bytes(data) if data is not None else b""
