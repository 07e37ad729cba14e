"""Reading boundary layers and generations (版本) from the store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gis.core.predicates import in_generation, is_current
from gis.core.vocab import LAYERS, SRID

if TYPE_CHECKING:
    import geopandas as gpd

Conn = Connection | Session

# "Row valid in generation :g" without a table alias (gis.core.predicates.in_generation for others).
IN_GENERATION = in_generation()


class UnknownLayerError(ValueError):
    pass


def check_layer(layer: str) -> str:
    if layer not in LAYERS:
        raise UnknownLayerError(f"unknown layer {layer!r}; layers are {', '.join(LAYERS)}")
    return layer


@dataclass(frozen=True)
class GenerationInfo:
    id: int
    layers: str
    note: str
    author: str
    based_on: int | None
    created_at: dt.datetime
    published_at: dt.datetime | None
    # The county whose units it replaced (migration 0032); None: any county (the whole deployment).
    county_code: str | None = None


def current_generation(conn: Conn) -> int | None:
    return conn.execute(sa.text("SELECT max(id) FROM generations WHERE published_at IS NOT NULL")).scalar()


def generation_at(conn: Conn, at: dt.datetime | None) -> int | None:
    """The generation in force at ``at`` (now when None); same rule as SQL ``gridmap_generation_at``."""
    return conn.execute(sa.text("SELECT gridmap_generation_at(:at)"), {"at": at}).scalar()


def current_counties(conn: Conn) -> list[tuple[str, str]]:
    """(code, name) of every county in force, in the order they were loaded."""
    rows = conn.execute(
        sa.text(f"SELECT code, name FROM areas WHERE layer = 'county' AND {is_current()} ORDER BY id")  # noqa: S608
    ).all()
    return [(str(r.code), str(r.name)) for r in rows]


def list_generations(conn: Conn) -> list[GenerationInfo]:
    rows = conn.execute(
        sa.text(
            "SELECT id, layers, note, author, based_on, created_at, published_at, county_code "
            "FROM generations ORDER BY id"
        )
    ).all()
    return [GenerationInfo(*row) for row in rows]


def load_layer(conn: Conn, layer: str, generation: int) -> gpd.GeoDataFrame:
    """All polygons of ``layer`` valid in ``generation``, sorted by code."""
    # Imported here: geopandas (and pandas) take about a second to import, and most users of
    # this module (the map pages, the CLI) only need the light helpers above.
    import geopandas as gpd
    import shapely

    check_layer(layer)
    rows = conn.execute(
        sa.text(
            f"SELECT code, name, parent_code, households, attrs, ST_AsBinary(geom) AS wkb "  # noqa: S608
            f"FROM areas WHERE layer = :layer AND {IN_GENERATION} ORDER BY code"
        ),
        {"layer": layer, "g": generation},
    ).all()
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return gpd.GeoDataFrame(
        {
            "code": [r.code for r in rows],
            "name": [r.name for r in rows],
            "parent_code": [r.parent_code for r in rows],
            "households": [r.households for r in rows],
            "attrs": [r.attrs for r in rows],
        },
        geometry=gpd.GeoSeries(geoms, crs=f"EPSG:{SRID}"),
    )
