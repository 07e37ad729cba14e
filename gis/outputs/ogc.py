"""OGC API - Features (and tiles) over the curated ``ogc`` views, served by tipg.

tipg does the protocol (landing page, conformance, collections, items with bbox/datetime/CQL2
filters, paging with ``next`` links, queryables, OGC tiles); gridmap decides what it may see: the
views of schema ``ogc`` and nothing else. tipg would by default also publish every SQL function
it can call as a "Function" collection; GDAL's OAPIF driver probes those and fails (HTTP 422), so
functions are switched off here.

tipg talks to PostgreSQL through asyncpg, which needs a plain ``postgresql://`` DSN; that is
derived from the SQLAlchemy URL the application already uses, so both always hit the same database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url
from starlette.templating import Jinja2Templates
from tipg.collections import Catalog, Collection, pg_get_collection_index
from tipg.database import connection_factory
from tipg.factory import Endpoints
from tipg.settings import DatabaseSettings

OGC_SCHEMA = "ogc"

# Which timestamp a collection's ``datetime`` filter applies to (tipg would take the first
# timestamp column in alphabetical order, e.g. ``closed_at`` for incidents).
DATETIME_COLUMNS = {
    "incidents": "reported_at",
    "hazards": "found_at",
    "buildings": "last_inspected_at",
}
# Boundaries are identified by their code; point records by their numeric id.
AREA_VIEWS = frozenset({"counties", "towns", "villages", "grids", "micro_grids", "stations", "beats"})


class OgcConfigError(ValueError):
    """The database URL cannot be turned into one asyncpg understands."""


def asyncpg_dsn(url: str | URL) -> str:
    """A ``postgresql://`` DSN for asyncpg from a SQLAlchemy URL (TCP or Unix socket folder)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if not parsed.drivername.startswith("postgresql"):
        raise OgcConfigError(f"database URL driver {parsed.drivername!r} is not PostgreSQL")
    if not parsed.database:
        raise OgcConfigError("database URL names no database")
    # asyncpg reads ``host=/socket/dir`` and ``port`` from the query string, as libpq does.
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def database_settings() -> DatabaseSettings:
    return DatabaseSettings(schemas=[OGC_SCHEMA], functions=[], application_schema="pg_temp")


async def open_pool(dsn: str, *, min_size: int = 1, max_size: int = 5) -> asyncpg.Pool:
    settings = database_settings()
    init = connection_factory(settings.schemas, settings.tipg_schema)
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, max_inactive_connection_lifetime=300, init=init
    )
    if pool is None:  # only when create_pool is awaited without connecting, which we never do
        raise OgcConfigError("asyncpg returned no pool")
    return pool


def _curate(collection: Collection) -> Collection:
    columns = {c.name: c for c in collection.table_columns}
    update: dict[str, Any] = {}
    name = collection.table
    if name in AREA_VIEWS and "code" in columns:
        update["id_column"] = columns["code"]
    if name in DATETIME_COLUMNS and DATETIME_COLUMNS[name] in columns:
        update["datetime_column"] = columns[DATETIME_COLUMNS[name]]
    return collection.model_copy(update=update) if update else collection


async def load_catalog(pool: asyncpg.Pool) -> Catalog:
    """The collections tipg will serve: the ``ogc`` views with our id and datetime columns."""
    async with pool.acquire() as conn:
        found = await pg_get_collection_index(conn, settings=database_settings())
    collections = [_curate(c) for c in found if c.id.startswith(f"{OGC_SCHEMA}.")]
    return Catalog(collections={c.id: c for c in collections}, last_updated=dt.datetime.now())


def make_endpoints(prefix: str, title: str = "gridmap OGC API", templates: Jinja2Templates | None = None) -> Endpoints:
    """tipg's routers (features + tiles), with links built under ``prefix``; ``templates`` renders
    the HTML views (tipg's own when None)."""
    if templates is None:
        return Endpoints(title=title, router_prefix=prefix, with_tiles_viewer=False)
    return Endpoints(title=title, router_prefix=prefix, with_tiles_viewer=False, templates=templates)
