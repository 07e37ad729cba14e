"""Error handlers: every error leaves as JSON with a clear ``detail``; database outages become 503."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

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
    if isinstance(exc, DataError):
        return await _bad_data(request, exc)
    raise exc


def _nul_fields(value: Any, path: list[str | int]) -> list[list[str | int]]:
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nul_fields(v, [*path, str(k)]) + _nul_fields(k, [*path, str(k)])]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nul_fields(v, [*path, i])]
    return []


async def _bad_data(request: Request, exc: DataError) -> JSONResponse:
    """Input the database refuses as data (a NUL character in text, a value out of a column's
    range) is the client's error: 422 naming the fields, never a 500."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if "NUL" not in reason:
        return JSONResponse({"detail": [{"type": "value_error", "loc": ["body"], "msg": reason}]}, status_code=422)
    # PostgreSQL text cannot hold U+0000. The offending fields are found in the request (the JSON
    # body is cached by then), which keeps the hot paths free of a check of every string.
    locs: list[list[str | int]] = [
        ["query", k] for k, v in request.query_params.multi_items() if "\x00" in k or "\x00" in v
    ]
    locs += [["path", k] for k, v in request.path_params.items() if "\x00" in str(v)]
    body = getattr(request, "_body", None)
    if body:
        with contextlib.suppress(ValueError):
            locs += [["body", *p] for p in _nul_fields(json.loads(body), [])]
    msg = "text may not contain the NUL character (U+0000)"
    items = [{"type": "value_error", "loc": loc, "msg": msg} for loc in locs] or [
        {"type": "value_error", "loc": ["body"], "msg": msg}
    ]
    return JSONResponse({"detail": items}, status_code=422)


async def response_for_database_error(request: Request, exc: DBAPIError) -> JSONResponse | None:
    """What the handlers below answer for ``exc``, for code that runs outside the routes (the
    fast paths); None when they would not handle it (a 500)."""
    if isinstance(exc, OperationalError):
        return await _db_unavailable(request, exc)
    if exc.connection_invalidated or isinstance(exc, DataError):
        return await _dbapi(request, exc)
    return None


async def _shard_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """One county's shard is down (gis.shards.routing): 503 naming the shard and the county."""
    log.warning("shard unavailable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {
            "detail": f"{exc}; retry shortly",
            "error": "shard_unavailable",
            "shard": getattr(exc, "shard", None),
            "county": getattr(exc, "county", None),
        },
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install(app: FastAPI) -> None:
    from gis.shards.routing import ShardUnavailable

    app.add_exception_handler(OperationalError, _db_unavailable)
    app.add_exception_handler(ShardUnavailable, _shard_unavailable)
    app.add_exception_handler(DBAPIError, _dbapi)
    document_errors(app)


# --- the errors in the OpenAPI document ----------------------------------------------------------
# Routers declare the errors of their own domain (404 unknown incident, 409 illegal transition...);
# the errors every keyed endpoint shares are declared here once, so that the document lists every
# status code the service really answers with (checked by the schemathesis run in the tests).

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}],
            "description": "what is wrong; validation errors list each field (`loc`) with the reason (`msg`)",
        },
        "error": {"type": "string", "description": "a machine-readable code, where there is one"},
    },
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
_COMMON: dict[str, dict[str, Any]] = {
    "400": {"description": "the request body could not be parsed"},
    "401": {"description": "no API key (X-API-Key, Bearer or ?key=), or an unknown or revoked one"},
    "403": {"description": "the key's role may not do this"},
    "404": {"description": "nothing with that identifier"},
    "429": {"description": "the key's rate limit is exceeded", "headers": _RETRY_AFTER},
    "503": {"description": "the database is unavailable", "headers": _RETRY_AFTER},
}
UNKEYED_PATHS = frozenset({"/health"})


def _error_response(spec: dict[str, Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {**spec, "content": content}


def add_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the shared error answers on every operation of an OpenAPI document (in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    if "ValidationError" not in schemas:
        schemas["ValidationError"] = {"type": "object"}
    if "HTTPValidationError" in schemas:
        # Domain checks answer 422 with one sentence, FastAPI's own validation with a list.
        schemas["HTTPValidationError"]["properties"]["detail"] = ERROR_SCHEMA["properties"]["detail"]
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ["503"]
            if path not in UNKEYED_PATHS:
                codes += ["401", "403", "429"]
            if "{" in path:
                codes.append("404")
            if "requestBody" in operation:
                codes.append("400")
            responses = operation["responses"]
            for code in codes:
                if code not in responses:
                    responses[code] = _error_response(_COMMON[code])
                elif "content" not in responses[code]:
                    responses[code]["content"] = _error_response(_COMMON[code])["content"]
    return document


def document_errors(app: FastAPI) -> None:
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_error_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
