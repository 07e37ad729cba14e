"""Pure-ASGI fast paths for the residents' two hot requests, in the manner of api.fastpath:
``POST /public/reports`` with a JSON body (no photos) and the tracking page
``GET /public/reports/{ticket}``.

FastAPI's routing, dependency solving (the tracking page's session is a sync generator
dependency: two worker-thread hops plus one for the handler) and response encoding were more than
half the CPU of these requests: under wrk (bench/bench_public.py, 2 workers) 5.1 ms (report) and
5.4 ms (tracking) of server CPU a request through the routes, 2.35 and 2.46 ms through this path.
These middlewares make the routes' own calls
(``submit_report``, ``view_report``) with the routes' abuse counts (api.routers.public_reports:
device and IP buckets, the read bucket) in one worker-thread hop, and answer the same JSON.
Anything else goes on to the route, which gives the documented answer: a form or multipart body
(photos), other query parameters, an installed captcha hook, an exhausted abuse bucket, a report
refused by its checks, an unknown ticket or a wrong token, an overlong token. The tokens taken
here are given back before a request is handed on (the route counts it again), and nothing is
stored before that: a refused report raises before its transaction writes (gis.channels.public).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pydantic
import sqlalchemy.exc
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from api import errors
from api.deps import autocommit_connection, request_session
from api.fastpath import ASGIApp, Receive, Scope, Send, _read_body, _replaying
from api.routers.public_reports import bucket, client_ip, lang_of
from gis.channels.errors import PublicError
from gis.channels.public import submit_report, view_report

REPORTS = "/public/reports"
# The route's path pattern (^\d{6}-\d{6}$), in ASCII digits only: other digits are the route's.
_TICKET = re.compile(r"^/public/reports/([0-9]{6}-[0-9]{6})$")
MAX_TOKEN = 64  # the route's max_length of the token (header and query); longer is its 422
JSON = b"application/json"
# The tracking route returns ``dict[str, Any]``, which FastAPI serialises as its response model
# (times in UTC as ``...Z``): the same adapter gives the same JSON.
_VIEW_JSON = pydantic.TypeAdapter(dict[str, Any])


def _query(scope: Scope, allowed: frozenset[str]) -> dict[str, str] | None:
    """The query parameters when all are ``allowed`` and none repeats; else None (for the route)."""
    raw = scope["query_string"]
    if not raw:
        return {}
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    params = dict(pairs)
    if len(params) != len(pairs) or not params.keys() <= allowed:
        return None
    return params


class _Counts:
    """The public abuse buckets taken for one request, to give back when it is handed on."""

    def __init__(self, scope: Scope) -> None:
        self.limiter = scope["app"].state.admission.limiter
        self.taken: list[tuple[int, int]] = []

    def take(self, kind: str, value: str | None, limit: int) -> bool:
        """The route's ``count``: True when a token was taken (or none is needed)."""
        if not value or not limit:
            return True
        key = bucket(kind, value)
        if self.limiter.take(key, limit) > 0:
            return False  # refused: nothing was taken
        self.taken.append((key, limit))
        return True

    def refund(self) -> None:
        for key, limit in self.taken:
            self.limiter.refund(key, limit)
        self.taken.clear()


async def _send(send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", JSON), length, *headers]}
    )
    await send({"type": "http.response.body", "body": body})


async def _database_error(request: Request, exc: sqlalchemy.exc.DBAPIError, body: bytes) -> Response:
    """The route's handlers' answer (503 with Retry-After for an outage, 422 for refused data)."""
    request._body = body  # the 422 for a NUL character names the body fields
    response = await errors.response_for_database_error(request, exc)
    if response is None:
        raise exc
    return response


class PublicFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # how many requests took this path (tests and benchmarks look)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == REPORTS and scope["method"] == "POST":
                await self._report(scope, receive, send)
                return
            if scope["method"] == "GET" and path.startswith(REPORTS):
                match = _TICKET.match(path)
                if match is not None:
                    await self._track(scope, receive, send, match[1])
                    return
        await self.app(scope, receive, send)

    # --- POST /public/reports ------------------------------------------------------------------

    async def _report(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        state = scope["app"].state
        # The captcha hook: when installed, the route consults it (and words its refusal).
        if media_type != "application/json" or getattr(state, "captcha", None) is not None:
            await self.app(scope, receive, send)
            return
        if _query(scope, frozenset({"lang"})) is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)  # the app's body-size limit applies to this receive
        if body is None:
            return  # the client went away mid-body: nothing to store, nobody to answer
        result = await self._submit(scope, receive, body)
        if result is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        if isinstance(result, Response):
            await result(scope, receive, send)
            return
        self.answered += 1
        location = (b"location", f"/public/reports/{result['ticket']}".encode())
        await _send(send, 201, orjson.dumps(result), location)

    @staticmethod
    async def _submit(scope: Scope, receive: Receive, body: bytes) -> dict[str, Any] | Response | None:
        """The answer; an error response when the database failed; None to hand the request to
        the route, only while nothing can have been stored."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        request = Request(scope, _replaying(body, receive))
        settings = scope["app"].state.settings
        ip = client_ip(request)
        device = data.get("device_id") if isinstance(data.get("device_id"), str) else None
        counts = _Counts(scope)
        # The route's order: the device first, then the IP address; a refusal is the route's 429.
        if not (
            counts.take("device", device, settings.public_reports_per_device_minute)
            and counts.take("ip", ip, settings.public_reports_per_ip_minute)
        ):
            counts.refund()
            return None
        data.setdefault("lang", lang_of(request))

        def work() -> dict[str, Any]:
            with request_session(request) as session:
                return submit_report(session, data, ip=ip, photos=[], settings=settings)

        try:
            answer = await run_in_threadpool(work)
        except PublicError:
            counts.refund()  # refused before anything was written: the route words the 422
            return None
        except sqlalchemy.exc.DBAPIError as exc:
            # Not handed on: a connection lost around the commit may have stored the report.
            return await _database_error(request, exc, body)
        answer.pop("incident_id")  # the staff's id stays theirs
        answer.pop("open311_token")
        return answer

    # --- GET /public/reports/{ticket} ----------------------------------------------------------

    async def _track(self, scope: Scope, receive: Receive, send: Send, ticket: str) -> None:
        params = _query(scope, frozenset({"lang", "token"}))
        header = Headers(scope=scope).get("x-ticket-token")
        query_token = None if params is None else params.get("token")
        if (
            params is None
            or (header is not None and len(header) > MAX_TOKEN)
            or (query_token is not None and len(query_token) > MAX_TOKEN)
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        counts = _Counts(scope)
        limit = scope["app"].state.settings.public_reads_per_ip_minute
        if not counts.take("read", client_ip(request), limit):
            await self.app(scope, receive, send)  # the route answers 429 with Retry-After
            return
        token, lang = header or query_token, lang_of(request)

        def work() -> dict[str, Any]:
            # Reads only, each statement its own snapshot as in the route's READ COMMITTED session:
            # without BEGIN and COMMIT, two round trips fewer.
            with autocommit_connection(request) as conn:
                return view_report(conn, ticket, token, lang)

        try:
            answer = await run_in_threadpool(work)
        except (PublicError, sqlalchemy.exc.DBAPIError):
            # An unknown ticket or a wrong token (the route's 404), or a database error (a read:
            # nothing stored, so the route may try it again and give its answer).
            counts.refund()
            await self.app(scope, receive, send)
            return
        self.answered += 1
        await _send(send, 200, _VIEW_JSON.dump_json(answer))
