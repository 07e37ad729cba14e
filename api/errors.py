"""Error handlers: every error leaves as JSON with a clear ``detail``; database outages become 503."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger("gridmap.api")

RETRY_AFTER_S = 2


async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the database is unavailable; retry shortly", "error": "database_unavailable"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _dbapi(request: Request, exc: Exception) -> JSONResponse:
    # A broken connection surfaces as DBAPIError with connection_invalidated; treat it as an outage.
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return await _db_unavailable(request, exc)
    raise exc


def install(app: FastAPI) -> None:
    app.add_exception_handler(OperationalError, _db_unavailable)
    app.add_exception_handler(DBAPIError, _dbapi)
