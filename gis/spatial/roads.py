"""Road centrelines (table ``roads``, migration 0030): stored as lines in EPSG:4326, read back for
an area. Redistricting proposals (gis.analysis.redistrict_roads) prefer them as unit borders."""

from __future__ import annotations

from collections.abc import Iterable

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from gis.spatial.areas import Conn


def store_roads(conn: Conn, lines: Iterable[tuple[str, BaseGeometry]], *, kind: str = "road", source: str = "") -> int:
    """Insert (name, line) rows; a LineString is stored as a one-part MultiLineString. Returns the count."""
    rows = []
    for name, geom in lines:
        if geom.is_empty or geom.geom_type not in ("LineString", "MultiLineString"):
            raise ValueError(f"road {name!r}: a road is a line, not a {geom.geom_type}")
        multi = shapely.multilinestrings([geom]) if geom.geom_type == "LineString" else geom
        rows.append({"n": name, "k": kind, "s": source, "w": shapely.to_wkb(multi)})
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO roads (name, kind, source, geom) VALUES (:n, :k, :s, ST_SetSRID(ST_GeomFromWKB(:w), 4326))"
            ),
            rows,
        )
    return len(rows)


def roads_within(conn: Conn, bounds: tuple[float, float, float, float]) -> list[BaseGeometry]:
    """The road lines meeting the box (lon/lat bounds), clipped to it: all a proposal of the box needs."""
    x0, y0, x1, y1 = bounds
    rows = conn.execute(
        sa.text(
            "SELECT ST_AsBinary(ST_Intersection(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))) FROM roads "
            "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) ORDER BY id"
        ),
        {"x0": x0, "y0": y0, "x1": x1, "y1": y1},
    ).scalars()
    return [g for g in (shapely.from_wkb(bytes(r)) for r in rows) if not g.is_empty]
