"""Boundary layers for the maps: simplified as a coverage (shared edges stay shared), cached per
generation, with bounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from threading import Lock
from typing import Any

import numpy as np
import orjson
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.core.predicates import in_generation
from gis.outputs.features import _display, cell_degrees, check_display_crs
from gis.outputs.mapfilter import COORD_DECIMALS, DEFAULT_TOLERANCE_M, MapQueryError
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import IN_GENERATION, Conn, check_layer, current_generation

MAX_CACHED_LAYERS = 64


class LayerCache:
    """Simplified layers by (database, layer, generation, tolerance, display CRS). A published
    generation never changes, so entries need no invalidation; the database URL is part of the
    key because tests and benchmarks use several databases in one process. The API owns one
    (``app.state.map_layers``); a standalone page build makes its own."""

    def __init__(self, max_entries: int = MAX_CACHED_LAYERS) -> None:
        self.max_entries = max_entries
        self._layers: dict[tuple[str, ...], dict[str, Any]] = {}
        self._lock = Lock()

    def get(self, key: tuple[str, ...]) -> dict[str, Any] | None:
        with self._lock:
            return self._layers.get(key)

    def put(self, key: tuple[str, ...], collection: dict[str, Any]) -> None:
        with self._lock:
            if len(self._layers) >= self.max_entries:
                self._layers.clear()
            self._layers[key] = collection


def _db_key(conn: Conn) -> str:
    engine = conn.get_bind() if isinstance(conn, Session) else conn.engine
    return engine.engine.url.render_as_string(hide_password=True)


def _resolve_generation(conn: Conn, generation: int | None) -> int:
    gen = generation if generation is not None else current_generation(conn)
    if gen is None:
        raise MapQueryError("no boundary generation is published yet; load boundaries first (gridmap seed jiashan)")
    return gen


def _simplified_layer(
    conn: Conn, layer: str, generation: int, tolerance_m: float, display_crs: str, cache: LayerCache | None
) -> dict[str, Any]:
    """The whole layer as GeoJSON, simplified as a coverage in metres, kept in ``cache`` if given."""
    key = (_db_key(conn), layer, str(generation), f"{tolerance_m:g}", display_crs)
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return hit
    # Read straight into shapely (no GeoDataFrame, and not the attrs column, which the pages do
    # not show): building the frame and decoding attrs cost more than the simplification.
    rows = conn.execute(
        sa.text(
            "SELECT code, name, parent_code, households, ST_AsBinary(geom) AS wkb "  # noqa: S608
            f"FROM areas WHERE layer = :layer AND {IN_GENERATION} ORDER BY code"
        ),
        {"layer": check_layer(layer), "g": generation},
    ).all()
    geoms = shapely.from_wkb([bytes(r[4]) for r in rows]) if rows else np.empty(0, dtype=object)
    if len(geoms) and tolerance_m > 0:
        # Simplified in degrees with the tolerance converted at the layer's latitude: for display
        # this matches a metric simplification, without projecting every vertex twice.
        bounds = shapely.total_bounds(geoms)
        dx, dy = cell_degrees(tolerance_m, (bounds[1] + bounds[3]) / 2)
        geoms = shapely.coverage_simplify(geoms, min(dx, dy), simplify_boundary=True)
    if display_crs != "wgs84":
        geoms = shapely.transform(geoms, lambda c: np.column_stack(_display(c[:, 0], c[:, 1], display_crs)))
    if len(geoms):
        geoms = shapely.transform(geoms, lambda c: np.round(c, COORD_DECIMALS))
    # shapely's C GeoJSON writer is ~3x faster than building dicts with mapping().
    shapes = [orjson.loads(text) for text in shapely.to_geojson(geoms)] if len(geoms) else []
    features = [
        {
            "type": "Feature",
            "properties": {
                "code": code,
                "name": name,
                "parent_code": parent,
                "households": None if hh is None else int(hh),
                "layer": layer,
            },
            "geometry": shape,
        }
        for (code, name, parent, hh, _), shape in zip(rows, shapes, strict=True)
    ]
    collection = {"type": "FeatureCollection", "features": features}
    if cache is not None:
        cache.put(key, collection)
    return collection


def layer_geojson(
    conn: Conn,
    layer: str,
    generation: int | None = None,
    *,
    codes: Iterable[str] | None = None,
    parent_codes: Iterable[str] | None = None,
    tolerance_m: float | None = None,
    display_crs: str = "wgs84",
    cache: LayerCache | None = None,
    scope: Scope = WHOLE_COUNTY,
) -> dict[str, Any]:
    """Polygons of ``layer`` in force in ``generation`` (default: the current one) as GeoJSON.

    ``codes``/``parent_codes`` keep only those units. Properties: code, name, parent_code,
    households, layer. ``scope``: the caller's; units it does not show (``Scope.shows``) are left
    out. The whole layer is kept in ``cache`` when one is given, and the features
    are then shared with it: copy before mutating them.
    """
    check_layer(layer)
    check_display_crs(display_crs)
    tol = DEFAULT_TOLERANCE_M.get(layer, 2.0) if tolerance_m is None else tolerance_m
    if tol < 0:
        raise MapQueryError(f"tolerance_m: {tol} must be >= 0")
    full = _simplified_layer(conn, layer, _resolve_generation(conn, generation), tol, display_crs, cache)
    if codes is None and parent_codes is None and scope.whole:
        return full
    keep_codes = set(codes) if codes is not None else None
    keep_parents = set(parent_codes) if parent_codes is not None else None
    features = [
        f
        for f in full["features"]
        if (keep_codes is None or f["properties"]["code"] in keep_codes)
        and (keep_parents is None or f["properties"]["parent_code"] in keep_parents)
        and scope.shows(f["properties"]["code"])
    ]
    return {"type": "FeatureCollection", "features": features}


def area_bounds(conn: Conn, layer: str, code: str, generation: int | None = None) -> tuple[float, ...] | None:
    """(min lon, min lat, max lon, max lat) of one unit, or None if it does not exist."""
    row = conn.execute(
        sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "  # noqa: S608
            f"(SELECT ST_Extent(geom) AS e FROM areas WHERE layer = :layer AND code = :code AND {IN_GENERATION}) s"
        ),
        {"layer": check_layer(layer), "code": code, "g": _resolve_generation(conn, generation)},
    ).one()
    return None if row[0] is None else tuple(float(v) for v in row)


def overlapping_areas(
    conn: Conn, layer: str, code: str, other_layer: str, generation: int | None = None, min_share: float = 0.001
) -> list[dict[str, Any]]:
    """Units of ``other_layer`` that overlap unit ``code`` of ``layer`` by area (not just an edge).

    ``share`` is the part of the other unit that lies inside this one (0..1).
    """
    gen = _resolve_generation(conn, generation)
    rows = conn.execute(
        sa.text(
            "SELECT o.code, o.name, o.households, "  # noqa: S608
            "ST_Area(ST_Intersection(o.geom, a.geom)::geography) / nullif(ST_Area(o.geom::geography), 0) AS share "
            "FROM areas a JOIN areas o ON o.layer = :other AND ST_Intersects(o.geom, a.geom) "
            f"AND {in_generation('o')} "
            f"WHERE a.layer = :layer AND a.code = :code AND {in_generation('a')} "
            "ORDER BY o.code"
        ),
        {"layer": check_layer(layer), "code": code, "other": check_layer(other_layer), "g": gen},
    ).mappings()
    return [
        {"code": r["code"], "name": r["name"], "households": r["households"], "share": round(float(r["share"] or 0), 4)}
        for r in rows
        if (r["share"] or 0) >= min_share
    ]


def layer_bounds(conn: Conn, layer: str, generation: int | None = None) -> tuple[float, float, float, float] | None:
    """(min lon, min lat, max lon, max lat) of a whole layer, or None when it is empty."""
    row = conn.execute(
        sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "  # noqa: S608
            f"(SELECT ST_Extent(geom) AS e FROM areas WHERE layer = :layer AND {IN_GENERATION}) s"
        ),
        {"layer": check_layer(layer), "g": _resolve_generation(conn, generation)},
    ).one()
    return None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
