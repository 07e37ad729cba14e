"""Writing boundary generations: a new generation opens new rows and closes the rows it replaces.

Generations are per county when a deployment runs several (issue #20): a generation may carry a
county code, and then replaces only units of that county (codes starting with it), so publishing
one county's boundaries never closes another's. A generation without a county replaces across
the deployment (the whole layer, as a one-county deployment always did).

Nothing is overwritten: a replaced row keeps its geometry and gets ``gen_to`` set, so every past
generation stays queryable. Publishing sends ``NOTIFY gridmap_boundaries`` so that processes
holding in-memory indexes (gis.spatial.assign.AssignerCache) rebuild them after commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping

import geopandas as gpd
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon

from gis.core.models import SRID
from gis.core.predicates import is_current
from gis.core.vocab import BOUNDARIES_CHANNEL
from gis.spatial.areas import Conn, check_layer

NOTIFY_CHANNEL = BOUNDARIES_CHANNEL


class BoundaryDataError(ValueError):
    """A layer to store is malformed; the message names the row and the field."""


def as_multipolygon(geom: object, where: str) -> MultiPolygon:
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    kind = getattr(geom, "geom_type", type(geom).__name__)
    raise BoundaryDataError(f"{where}: geometry is {kind}, expected Polygon or MultiPolygon")


def _check_county(county: str | None) -> str | None:
    if county is not None and (len(county) != 6 or not county.isdigit()):
        raise BoundaryDataError(f"county {county!r} is not a six-digit county code")
    return county


def new_generation(
    conn: Conn,
    layers: Iterable[str],
    *,
    note: str,
    author: str,
    based_on: int | None = None,
    county: str | None = None,
) -> int:
    names = ",".join(sorted({check_layer(layer) for layer in layers}))
    params = {"l": names, "n": note, "a": author, "b": based_on, "c": _check_county(county)}
    # county_code only when there is one: a deployment-wide generation is written as before
    # migration 0032 (tests of older migrations publish with this function).
    column, value = (", county_code", ", :c") if county is not None else ("", "")
    return int(
        conn.execute(
            sa.text(
                f"INSERT INTO generations (layers, note, author, based_on{column}) "  # noqa: S608 - constants
                f"VALUES (:l, :n, :a, :b{value}) RETURNING id"
            ),
            params,
        ).scalar_one()
    )


def mark_published(conn: Conn, generation: int, published_at: dt.datetime | None = None) -> None:
    conn.execute(
        sa.text("UPDATE generations SET published_at = coalesce(:at, now()) WHERE id = :g"),
        {"at": published_at, "g": generation},
    )
    conn.execute(
        sa.text("SELECT pg_notify(:ch, :payload)"),
        {"ch": NOTIFY_CHANNEL, "payload": json.dumps({"generation": generation})},
    )


def close_rows(
    conn: Conn, layer: str, codes: Iterable[str] | None, generation: int, *, county: str | None = None
) -> int:
    """Close the rows in force of ``layer`` (all of them when ``codes`` is None; only those of
    ``county`` when it is given) as of ``generation``."""
    sql = f"UPDATE areas SET gen_to = :g WHERE layer = :layer AND {is_current()} AND gen_from < :g"  # noqa: S608
    params: dict[str, object] = {"g": generation, "layer": check_layer(layer)}
    if codes is not None:
        sql += " AND code = ANY(:codes)"
        params["codes"] = list(codes)
    if _check_county(county) is not None:
        # A county's units are the codes starting with its six digits (police codes too).
        sql += " AND left(code, 6) = :county"
        params["county"] = county
    closed = conn.execute(sa.text(sql + " RETURNING id"), params).scalars().all()
    return len(closed)


def insert_rows(conn: Conn, layer: str, gdf: gpd.GeoDataFrame, generation: int) -> int:
    """Insert a layer's polygons (EPSG:4326) as rows valid from ``generation``."""
    check_layer(layer)
    if gdf.crs is not None and gdf.crs.to_epsg() != SRID:
        raise BoundaryDataError(f"layer {layer}: CRS is {gdf.crs}, expected EPSG:{SRID} (convert at the edge)")
    missing = {"code", "name"} - set(gdf.columns)
    if missing:
        raise BoundaryDataError(f"layer {layer}: missing column(s) {', '.join(sorted(missing))}")
    rows = []
    for i, rec in enumerate(gdf.itertuples(index=False)):
        where = f"layer {layer} row {i} (code {getattr(rec, 'code', '?')})"
        code = getattr(rec, "code", None)
        if not isinstance(code, str) or not code.strip():
            raise BoundaryDataError(f"{where}: code is empty")
        geom = as_multipolygon(rec.geometry, where)
        if geom.is_empty:
            raise BoundaryDataError(f"{where}: geometry is empty")
        households = getattr(rec, "households", None)
        attrs = getattr(rec, "attrs", None)
        rows.append(
            {
                "layer": layer,
                "code": code,
                "name": str(rec.name),
                "g": generation,
                "parent": getattr(rec, "parent_code", None) or None,
                "hh": None if households is None or households != households else int(households),
                "attrs": json.dumps(attrs if isinstance(attrs, Mapping) else {}, ensure_ascii=False),
                "wkb": shapely.to_wkb(geom),
            }
        )
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO areas (layer, code, name, parent_code, households, attrs, geom, gen_from) "
                "VALUES (:layer, :code, :name, :parent, :hh, CAST(:attrs AS jsonb), "
                "ST_GeomFromWKB(:wkb, 4326), :g)"
            ),
            rows,
        )
    return len(rows)


def publish_layers(
    conn: Conn,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    note: str,
    author: str,
    published_at: dt.datetime | None = None,
    based_on: int | None = None,
    county: str | None = None,
) -> int:
    """Replace whole layers in one new generation (the caller's transaction makes it atomic);
    with ``county``, only that county's part of each layer (every given code must be in it)."""
    _check_county(county)
    if county is not None:
        for layer, gdf in layers.items():
            outside = [str(c) for c in gdf["code"] if not str(c).startswith(county)] if "code" in gdf else []
            if outside:
                raise BoundaryDataError(f"layer {layer}: code {outside[0]!r} is not in county {county}")
    generation = new_generation(conn, layers.keys(), note=note, author=author, based_on=based_on, county=county)
    for layer, gdf in layers.items():
        close_rows(conn, layer, None, generation, county=county)
        insert_rows(conn, layer, gdf, generation)
    mark_published(conn, generation, published_at)
    return generation
