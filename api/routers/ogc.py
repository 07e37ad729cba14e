"""OGC API - Features and Tiles under ``/ogc``: tipg's endpoints over the curated ``ogc`` views.

tipg's routes are included into our application (not mounted as a second app) so they share our
auth, error handlers and OpenAPI document. Its asyncpg pool and collection catalog live in
``app.state.pool`` / ``app.state.collection_catalog`` (where tipg looks for them); they are opened
when the application starts and again on the first request after a database outage.

Desktop GIS cannot always set headers, so besides ``X-API-Key`` a key may come as ``?key=``;
tipg copies query parameters into its ``next`` links, so paging keeps working either way.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Annotated
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams
from tipg import errors as tipg_errors

from api.auth import ANONYMOUS_ADMIN, authenticate
from api.deps import SessionDep
from api.timeparams import ogc_datetime
from gis.core.privacy import ROLE_RANK
from gis.outputs.ogc import asyncpg_dsn, load_catalog, make_endpoints, open_pool
from gis.people.keys import Principal, verify_key

log = logging.getLogger("gridmap.ogc")

PREFIX = "/ogc"
RETRY_AFTER_S = 2


def principal_from_header_or_query(request: Request, session: SessionDep) -> Principal:
    """The caller's principal from ``X-API-Key``/Bearer, or from ``?key=`` when no header is sent."""
    query_key = request.query_params.get("key")
    has_header = "x-api-key" in request.headers or "authorization" in request.headers
    if query_key is None or has_header:
        return authenticate(request, session)
    if not getattr(request.app.state.settings, "auth_enabled", True):
        return ANONYMOUS_ADMIN
    principal = verify_key(session, query_key)
    if principal is None:
        raise HTTPException(401, "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


def _viewer(principal: Annotated[Principal, Depends(principal_from_header_or_query)]) -> Principal:
    if ROLE_RANK.get(principal.role, -1) < ROLE_RANK["viewer"]:
        raise HTTPException(403, f"role {principal.role!r} may not read map data; it needs 'viewer' or above")
    return principal


# Any role with a key (header or ?key=); the role decides masking where an output differs by role.
KeyViewer = Annotated[Principal, Depends(_viewer)]


class _Runtime:
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
    runtime: _Runtime = request.app.state.ogc_runtime
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


_endpoints = make_endpoints(PREFIX)
router = APIRouter(
    prefix=PREFIX,
    dependencies=[Depends(_viewer), Depends(_bbox_numbers), Depends(_datetime_rule), Depends(_ogc_ready)],
)
router.include_router(_endpoints.router)


def _start(app: FastAPI) -> None:
    runtime = _Runtime(asyncpg_dsn(app.state.engine.url))
    app.state.ogc_runtime = runtime

    async def first_try() -> None:
        try:
            await runtime.ready(app)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Not fatal: the rest of the API works, and /ogc retries on its next request.
            log.warning("OGC API not ready at startup (will retry on request): %s", exc)

    runtime.first_try = asyncio.get_running_loop().create_task(first_try())


def _stop(app: FastAPI) -> None:
    runtime: _Runtime | None = getattr(app.state, "ogc_runtime", None)
    if runtime is not None:
        runtime.close()


async def _connection_lost(request: Request, exc: Exception) -> JSONResponse:
    log.warning("OGC API lost its database during %s: %s", request.url.path, exc)
    runtime: _Runtime | None = getattr(request.app.state, "ogc_runtime", None)
    if runtime is not None:
        runtime.close()
    return JSONResponse(
        {"detail": "the database is unavailable; retry shortly", "error": "database_unavailable"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def setup(app: FastAPI) -> None:
    # tipg's own errors (bad bbox, unknown property...) keep tipg's status codes; the catch-all
    # Exception entry is left out so the rest of the application keeps its error handling.
    for exc_type, code in tipg_errors.DEFAULT_STATUS_CODES.items():
        if exc_type is not Exception:
            app.add_exception_handler(exc_type, tipg_errors.exception_handler_factory(code))
    app.add_exception_handler(asyncpg.PostgresConnectionError, _connection_lost)
    app.add_exception_handler(asyncpg.InterfaceError, _connection_lost)
    app.state.startup_hooks.append(_start)
    app.state.shutdown_hooks.append(_stop)
