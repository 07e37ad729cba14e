"""Pure-ASGI fast paths for the service's two hottest requests: ``GET /lookup?lon=..&lat=..``
and ``POST /incidents``.

Measured in process, FastAPI's routing, dependency solving and response classes cost about twice
the coordinate lookup itself (~200 of ~320 us a request), and a similar ~0.3 ms of an intake.
These middlewares answer the common case before all of that: a well-formed request by a caller
whose key is in the auth cache. Anything else (an address lookup, ``as_of``, a bad parameter, an
unknown or uncached key, a rate-limited caller, cold caches, a database error) goes on to the
normal route, which gives the same answers and the documented errors; so a fast path never
decides an error itself. The routes stay the documented API (OpenAPI, tests of every error).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pydantic
import sqlalchemy.exc
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from api import auth, errors
from api.deps import autocommit_connection, request_session
from api.schemas.incidents import IncidentIn
from gis.core.privacy import ROLE_RANK, mask_record, role_sees_personal_data
from gis.incidents.intake import IncidentInputError, create_incident
from gis.incidents.scoped import OutsideScope, create_incident_in_scope
from gis.people.keys import Principal
from gis.spatial.lookupinput import LookupInputError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAST_PARAMS = frozenset({"lon", "lat", "crs"})
VIEWER_RANK = ROLE_RANK["viewer"]
REPORTER_RANK = ROLE_RANK["reporter"]
JSON_HEADERS = [(b"content-type", b"application/json")]


class _NeedsDatabase(Exception):
    """The lookup wanted the database (a cache went stale mid-request): use the normal route."""


class _NoDatabase:
    """Stands in for a connection: the fast path only runs when no query is needed."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        raise _NeedsDatabase

    def scalar(self, *args: Any, **kwargs: Any) -> Any:
        raise _NeedsDatabase


_NO_DB = _NoDatabase()


class LookupFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # how many requests took this path (tests and benchmarks look)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/lookup" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        body = self._answer(scope)
        if body is None:
            await self.app(scope, receive, send)
            return
        self.answered += 1
        await _send_json(send, 200, body)

    def _answer(self, scope: Scope) -> bytes | None:
        """The response body, or None when the normal route must handle the request."""
        try:
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return None
        params = dict(pairs)
        # Repeated or blank parameters have rules of their own in the route (the last one wins,
        # a blank one is missing): hand them on rather than repeat those rules here.
        if len(params) != len(pairs) or not all(params.values()):
            return None
        query_key = params.pop("key", None)  # a key may come as ?key= (api.auth.presented_key)
        if not params.keys() <= FAST_PARAMS or "lon" not in params or "lat" not in params:
            return None
        app = scope["app"]
        settings = app.state.settings
        admission: auth.Admission = app.state.admission
        caller = self._caller(scope, settings, admission, query_key)
        if caller is None:
            return None
        sees, principal = caller
        service = app.state.lookup
        if not service.ready(None):
            return None
        try:
            answer = service.lookup_one(
                _NO_DB, params["lon"], params["lat"], params.get("crs", "wgs84"), sees_personal_data=sees
            )
        except (LookupInputError, _NeedsDatabase):
            return None
        # Counted only once the answer is sure, so that a request handed on is not counted twice.
        limit = settings.rate_limit_per_minute
        if principal is not None and admission.take(principal, limit) > 0:
            return None  # the normal route answers 429 with Retry-After
        answer.setdefault("hint", None)
        answer["address"] = None
        return orjson.dumps(answer)

    @staticmethod
    def _caller(
        scope: Scope, settings: Any, admission: auth.Admission, query_key: str | None
    ) -> tuple[bool, Principal | None] | None:
        """Whether the caller sees personal data, and the key's principal (to rate-limit); None
        when the normal route must decide (no key, an unknown or uncached key, a low role)."""
        # The route's order: open lookups first (a caller presenting no key at all), then auth.
        headers = Headers(scope=scope)
        if settings.open_coordinate_lookups and not auth.presents_a_key(headers, query_key):
            return False, None
        if not settings.auth_enabled:
            return True, None  # the anonymous admin of closed test benches
        key = auth.presented_key(headers, query_key)
        if not key:
            return None
        principal = _cached_with_rank(admission, key, VIEWER_RANK)
        if principal is None:
            return None
        return role_sees_personal_data(principal.role), principal


def _cached_with_rank(admission: auth.Admission, key: str, rank: int) -> Principal | None:
    """The principal of a key in the admission's cache with at least this role rank, else None."""
    found, principal = admission.cached(key)
    if not found or principal is None or ROLE_RANK.get(principal.role, -1) < rank:
        return None
    return principal


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body to the next app, then defers to the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class IntakeFastPath:
    """``POST /incidents`` with a JSON body that validates, by a reporter (or above) whose key is
    cached: the same ``create_incident`` call and the same response as the route, without
    FastAPI's per-request routing and dependency machinery. A scoped key's report is stored in a
    savepoint and kept only inside its scope (``gis.incidents.scoped``); one outside is rolled
    back and handed to the route, which answers the 403."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != "/incidents"
            or scope["method"] != "POST"
            or scope["query_string"]
        ):
            await self.app(scope, receive, send)
            return
        principal = self._principal(scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)  # the app's body-size limit applies to this receive
        if body is None:
            return  # the client went away mid-body: nothing to store, nobody to answer
        result = await self._store(scope, receive, principal, body)
        if result is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        if isinstance(result, Response):
            await result(scope, receive, send)
            return
        incident, created = result
        self.answered += 1
        payload = orjson.dumps(mask_record(incident, principal.role))
        location = (b"location", f"/incidents/{incident['id']}".encode())
        await _send_json(send, 201 if created else 200, payload, location)

    @staticmethod
    def _principal(scope: Scope) -> Principal | None:
        state = scope["app"].state
        settings = state.settings
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not settings.auth_enabled or media_type != "application/json":
            return None
        key = auth.presented_key(headers)
        return _cached_with_rank(state.admission, key, REPORTER_RANK) if key else None

    @staticmethod
    async def _store(
        scope: Scope, receive: Receive, principal: Principal, body: bytes
    ) -> tuple[dict[str, Any], bool] | Response | None:
        """(incident, created); an error response when the database failed; or None to hand the
        request to the route, only while nothing can have been stored (the route then answers
        with its documented error for the same request)."""
        idempotency_key = Headers(scope=scope).get("idempotency-key")
        if idempotency_key is not None and len(idempotency_key) > 128:
            return None
        try:
            data = IncidentIn.model_validate(orjson.loads(body)).model_dump()
        except (orjson.JSONDecodeError, pydantic.ValidationError):
            return None
        app = scope["app"]
        settings = app.state.settings
        limit = settings.rate_limit_per_minute
        admission: auth.Admission = app.state.admission
        if admission.take(principal, limit) > 0:
            return None  # the route answers 429 with Retry-After (and counts nothing more)
        request = Request(scope, _replaying(body, receive))

        def store() -> tuple[dict[str, Any], bool]:
            if principal.scope.whole:
                with autocommit_connection(request) as conn:
                    return create_incident(conn, data, principal.name, idempotency_key, settings)
            # A scoped key: stored in a savepoint and rolled back when outside the scope.
            with request_session(request) as session:
                return create_incident_in_scope(
                    session, principal.scope, data, principal.name, idempotency_key, settings
                )

        try:
            return await run_in_threadpool(store)
        except OutsideScope:
            # Nothing was stored (rolled back): the route answers the 403 naming the unit.
            admission.refund(principal, limit)
            return None
        except IncidentInputError:
            # Raised before the insert, or by an insert that inserted nothing (swapped lon/lat):
            # the route answers the 422 naming the field. Its own check counts the request again.
            admission.refund(principal, limit)
            return None
        except sqlalchemy.exc.DBAPIError as exc:
            # Not handed on: a connection lost around the commit may have stored the row, and a
            # second insert without an idempotency key would store it twice. The same answers as
            # the route's handlers: 503 with Retry-After for an outage, 422 for refused data.
            request._body = body  # the 422 for a NUL character names the body fields
            response = await errors.response_for_database_error(request, exc)
            if response is None:
                raise
            return response


async def _send_json(send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*JSON_HEADERS, length, *headers]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None when the client disconnects before sending all of it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
