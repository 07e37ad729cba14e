"""OGC API - Features and Tiles under ``/ogc``: tipg's endpoints over the curated ``ogc`` views.

tipg's routes are included into our application (not mounted as a second app) so they share our
auth, error handlers and OpenAPI document. Its asyncpg pool and collection catalog live in
``app.state.pool`` / ``app.state.collection_catalog`` (where tipg looks for them); they are opened
when the application starts and again on the first request after a database outage.

Desktop GIS cannot always set headers, so a key may come as ``?key=`` (as on every endpoint,
api.auth); tipg copies query parameters into its ``next`` links, so paging keeps working.

A scoped key reads only its areas: the collection each request reads is the scoped copy
gis.outputs.ogc makes (the scope is added to tipg's own WHERE clause; the reason is there).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from starlette.datastructures import QueryParams
from starlette.responses import Response
from tipg import errors as tipg_errors
from tipg.collections import Collection
from tipg.dependencies import CollectionParams

from api.auth import current_principal, require
from api.timeparams import ogc_datetime
from gis.outputs.ogc import asyncpg_dsn, load_catalog, make_endpoints, open_pool, scoped_collection
from gis.people.keys import Principal
from maps import ogc_pages

log = logging.getLogger("gridmap.ogc")

PREFIX = "/ogc"
RETRY_AFTER_S = 2


class Runtime:
    """The asyncpg pool and catalog for tipg, opened once and reopened after a failure."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: asyncpg.Pool | None = None
        self.lock = asyncio.Lock()
        self.first_try: asyncio.Task[None] | None = None

    async def ready(self, app: FastAPI) -> None:
        if self.pool is not None:
            return
        async with self.lock:
            if self.pool is not None:
                return
            pool = await open_pool(self.dsn)
            try:
                app.state.collection_catalog = await load_catalog(pool)
            except BaseException:
                pool.terminate()
                raise
            app.state.pool = pool
            self.pool = pool

    def close(self) -> None:
        if self.first_try is not None and not self.first_try.done():
            self.first_try.cancel()
        if self.pool is not None:
            # Shutdown hooks are synchronous; terminate() closes the connections without awaiting.
            self.pool.terminate()
            self.pool = None


async def _ogc_ready(request: Request) -> None:
    runtime: Runtime = request.app.state.ogc_runtime
    try:
        await runtime.ready(request.app)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("OGC API database unavailable: %s", exc)
        raise HTTPException(
            503, "the database is unavailable; retry shortly", headers={"Retry-After": str(RETRY_AFTER_S)}
        ) from None


def _bbox_numbers(request: Request) -> None:
    """tipg turns ``bbox`` into floats unchecked (``bbox=x`` would be a 500): refuse it first."""
    raw = request.query_params.get("bbox")
    if not raw:
        return
    for part in raw.split(","):
        try:
            ok = math.isfinite(float(part))
        except ValueError:
            ok = False
        if not ok:
            msg = f"bbox must be 4 or 6 comma-separated finite numbers (minx,miny,maxx,maxy); {part!r} is not one"
            raise HTTPException(422, [{"type": "value_error", "loc": ["query", "bbox"], "msg": msg, "input": raw}])


def _datetime_rule(request: Request) -> None:
    """``datetime`` by the service's one time rule (naive = county time; tipg would answer a
    naive or malformed value with a 500): checked, then handed to tipg as RFC 3339 text in UTC.
    The query string is rewritten before tipg's own dependency reads it, which also keeps tipg's
    ``next`` links in the normalised form."""
    raw = request.query_params.get("datetime")
    if raw is None:
        return
    normalised = ogc_datetime(raw)
    if normalised != raw:
        items = [(k, normalised if k == "datetime" else v) for k, v in request.query_params.multi_items()]
        request.scope["query_string"] = urlencode(items).encode("latin-1")
        request._query_params = QueryParams(request.scope["query_string"])  # starlette caches the parsed query


async def _collection_in_scope(
    collection: Annotated[Collection, Depends(CollectionParams)],
    principal: Annotated[Principal, Depends(current_principal)],
) -> Collection:
    """The catalog's collection, limited to the caller's scope (the same object when unscoped)."""
    return scoped_collection(collection, principal.scope)


# HTML views from gridmap's templates: local scripts and the configured base map (maps.ogc_pages).
_endpoints = make_endpoints(PREFIX, templates=ogc_pages.templates(), collection_dependency=_collection_in_scope)
# Viewer or above, admitted like every endpoint (api.auth: header or ?key=); the role decides
# nothing more here, since the views mask personal data in SQL.
router = APIRouter(
    prefix=PREFIX,
    dependencies=[Depends(require("viewer")), Depends(_bbox_numbers), Depends(_datetime_rule), Depends(_ogc_ready)],
)
router.include_router(_endpoints.router)


def start(app: FastAPI, engine: Engine) -> Runtime:
    """The app's tipg runtime (``app.state.ogc_runtime``), with a first try at opening it in the
    background; call ``Runtime.close`` at shutdown."""
    runtime = Runtime(asyncpg_dsn(engine.url))
    app.state.ogc_runtime = runtime

    async def first_try() -> None:
        try:
            await runtime.ready(app)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Not fatal: the rest of the API works, and /ogc retries on its next request.
            log.warning("OGC API not ready at startup (will retry on request): %s", exc)

    runtime.first_try = asyncio.get_running_loop().create_task(first_try())
    return runtime


async def _connection_lost(request: Request, exc: Exception) -> JSONResponse:
    log.warning("OGC API lost its database during %s: %s", request.url.path, exc)
    runtime: Runtime | None = getattr(request.app.state, "ogc_runtime", None)
    if runtime is not None:
        runtime.close()
    return JSONResponse(
        {"detail": "the database is unavailable; retry shortly", "error": "database_unavailable"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


# tipg's own errors (bad bbox, unknown property...) keep tipg's status codes; the catch-all
# Exception entry is left out so the rest of the application keeps its error handling.
EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
    **{
        exc_type: tipg_errors.exception_handler_factory(code)
        for exc_type, code in tipg_errors.DEFAULT_STATUS_CODES.items()
        if exc_type is not Exception
    },
    asyncpg.PostgresConnectionError: _connection_lost,
    asyncpg.InterfaceError: _connection_lost,
}
