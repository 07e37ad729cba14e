"""OGC API - Features (and tiles) over the curated ``ogc`` views, served by tipg.

tipg does the protocol (landing page, conformance, collections, items with bbox/datetime/CQL2
filters, paging with ``next`` links, queryables, OGC tiles); gridmap decides what it may see: the
views of schema ``ogc`` and nothing else. tipg would by default also publish every SQL function
it can call as a "Function" collection; GDAL's OAPIF driver probes those and fails (HTTP 422), so
functions are switched off here.

tipg talks to PostgreSQL through asyncpg, which needs a plain ``postgresql://`` DSN; that is
derived from the SQLAlchemy URL the application already uses, so both always hit the same database.

A scoped key (gis.people.scope) reads its own areas only: each request gets a copy of the
collection whose WHERE clause also holds the scope, built here from the codes as a CQL2
expression (``ScopedCollection``). It is added inside tipg's own query building
(``cql_where``), which every read goes through (items, an item by id, the numberMatched count,
tiles), so nothing outside the scope is counted, listed or found (an item by id answers 404),
and the ``next`` links, made from the caller's query string, never carry it. Rewriting the
request's ``filter`` instead would have to merge with the caller's own filter and filter-lang
and would show in those links. Collection metadata (the extent tipg took from the catalog at
start) stays county-wide: it names no object.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from cql2 import Expr
from sqlalchemy.engine import URL, make_url
from starlette.templating import Jinja2Templates
from tipg.collections import Catalog, Collection, PgCollection, pg_get_collection_index
from tipg.database import connection_factory
from tipg.factory import Endpoints
from tipg.settings import DatabaseSettings

from gis.people.scope import Scope, code_layer

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
# Scoped copies of collections, per (collection, scope): a handful of scopes are in use at a time.
_SCOPED_CACHE_MAX = 512


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


def _prefix_test(column: str, code: str) -> dict[str, Any]:
    # cql2 renders LIKE with ESCAPE '\', so a code's own wildcard characters stay literal.
    literal = code.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {"op": "like", "args": [{"property": column}, f"{literal}%"]}


# A scoped caller and a collection with no column to test: nothing matches.
NOTHING: dict[str, Any] = {"op": "=", "args": [True, False]}


def scope_expression(collection: Collection, scope: Scope) -> Expr | None:
    """The CQL2 test "inside ``scope``" for a collection (None: the whole county; a lookup-only
    scope matches nothing).

    Boundaries are in when their own code starts with a scope code (a town's villages, grids
    and micro-grids; not the county above it, nor police beats, whose codes are not under a
    town's); points when their unit code of the scope code's layer is that code (a town code
    matches ``town_code``): the same rows as Scope.where gives the rest of the service, and a
    test the layer columns' indexes serve."""
    if scope.whole:
        return None
    names = {c.name for c in collection.table_columns}
    if collection.table in AREA_VIEWS:
        tests = [_prefix_test("code", code) for code in scope.codes]
    else:
        tests = [
            {"op": "=", "args": [{"property": f"{layer}_code"}, code]}
            for code in scope.codes
            if (layer := code_layer(code)) is not None and f"{layer}_code" in names
        ]
    if not tests:
        return Expr(NOTHING)
    return Expr(tests[0] if len(tests) == 1 else {"op": "or", "args": tests})


class ScopedCollection(PgCollection):
    """A collection whose every query also holds ``scope_filter`` (see the module's docstring)."""

    scope_filter: Any = None

    def cql_where(self, *args: Any, **kwargs: Any) -> Expr | None:
        where = super().cql_where(*args, **kwargs)
        if self.scope_filter is None:
            return where
        # Expr + Expr is AND, with the caller's filter kept in parentheses of its own.
        return self.scope_filter if where is None else where + self.scope_filter


# (catalog entry, scoped copy) by (id of the entry, scope): keeping the entry keeps its id from
# being reused by another object after the catalog is reloaded.
_scoped: dict[tuple[int, Scope], tuple[Collection, Collection]] = {}


def scoped_collection(collection: Collection, scope: Scope) -> Collection:
    """``collection`` as a caller of ``scope`` may read it (itself for the whole county)."""
    if scope.whole:
        return collection
    if not isinstance(collection, PgCollection):  # the catalog holds the ogc views only (load_catalog)
        raise TypeError(f"collection {collection.id} cannot be limited to a scope")
    key = (id(collection), scope)
    found = _scoped.get(key)
    if found is None:
        if len(_scoped) >= _SCOPED_CACHE_MAX:
            _scoped.clear()
        data = collection.model_dump(by_alias=True)
        found = _scoped[key] = (collection, ScopedCollection(**data, scope_filter=scope_expression(collection, scope)))
    return found[1]


def make_endpoints(
    prefix: str,
    title: str = "gridmap OGC API",
    templates: Jinja2Templates | None = None,
    collection_dependency: Any = None,
) -> Endpoints:
    """tipg's routers (features + tiles), with links built under ``prefix``; ``templates`` renders
    the HTML views (tipg's own when None); ``collection_dependency`` picks the collection a
    request reads (tipg's catalog lookup when None)."""
    options: dict[str, Any] = {"title": title, "router_prefix": prefix, "with_tiles_viewer": False}
    if templates is not None:
        options["templates"] = templates
    if collection_dependency is not None:
        options["collection_dependency"] = collection_dependency
    return Endpoints(**options)
