"""Open311 GeoReport v2 at /open311/v2 (gis.channels.open311): services, requests (list and POST),
one request, tokens; JSON or XML by the URL's suffix, errors in the spec's format
(``[{"code": 400, "description": "..."}]``, or ``<errors><error>…``).

Reads need no key, as the spec intends, and show nothing personal. A POST needs the spec's
``api_key``: a gridmap API key of role reporter or above, admitted (cache, per-key rate limit,
audit of refusals) like any other key.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import ANONYMOUS_ADMIN, check_role
from api.deps import SessionDep, request_session
from api.routers.public_reports import bucket
from gis.channels import open311
from gis.channels.errors import PublicInputError
from gis.channels.public import submit_report
from gis.core.timeparse import TimeValueError, parse_time
from gis.people.keys import Principal

router = APIRouter(prefix="/open311/v2", tags=["open311"])

# The spec's answers: a JSON array or an XML document, errors as ``[{"code", "description"}]``.
_XML = {"text/xml": {"schema": {"type": "string"}}}
_ERRORS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}


def _answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "JSON (.json) or XML (.xml)",
            "content": {"application/json": {"schema": {"type": "array"}}, **_XML},
        }
    }
    for code in codes:
        out[code] = {
            "description": "an error in the spec's format",
            "content": {"application/json": {"schema": _ERRORS}, **_XML},
        }
    return out


_READ = _answers(400, 404, 429)
_WRITE = _answers(400, 401, 403, 404, 429)

Fmt = Annotated[str, Path(description="json or xml")]
Jurisdiction = Annotated[str | None, Query(max_length=32, description=f"{open311.JURISDICTION} (嘉善县)")]
ListParam = Annotated[str | None, Query(max_length=2000)]
DateParam = Annotated[str | None, Query(max_length=40, description="W3C datetime, e.g. 2026-12-01T00:00:00+08:00")]


def _render(fmt: str, root: str, item: str, rows: list[dict[str, Any]], status: int = 200) -> Response:
    if fmt == "xml":
        return Response(open311.to_xml(root, item, rows), status_code=status, media_type="text/xml; charset=utf-8")
    return Response(orjson.dumps(rows), status_code=status, media_type="application/json")


def _error(fmt: str, exc: open311.Open311Error) -> Response:
    if fmt == "xml":
        body = open311.errors_xml(exc.status, exc.description)
        return Response(body, status_code=exc.status, media_type="text/xml; charset=utf-8")
    rows = [{"code": exc.status, "description": exc.description}]
    return Response(orjson.dumps(rows), status_code=exc.status, media_type="application/json")


def _limit(request: Request) -> None:
    """Public reads count against the per-IP read limit of the public surface (api.rate_limits)."""
    limit = request.app.state.settings.public_reads_per_ip_minute
    ip = request.client.host if request.client else None
    if ip and limit:
        wait = request.app.state.admission.limiter.take(bucket("read", ip), limit)
        if wait > 0:
            raise open311.Open311Error(429, f"too many requests from this address; retry in {max(1, round(wait))} s")


def _format(fmt: str) -> str:
    if fmt not in ("json", "xml"):
        raise open311.Open311Error(404, f"format {fmt!r} is not served; use .json or .xml")
    return fmt


def _time(field: str, value: str | None, bound: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return parse_time(value, bound=bound, field=field)  # type: ignore[arg-type]
    except TimeValueError as exc:
        raise open311.Open311Error(400, exc.message) from None


@router.get(
    "/services.{fmt}",
    responses=_READ,
    response_class=Response,
    summary="Open311: the service list (the resident categories)",
)
def get_services(fmt: Fmt, jurisdiction_id: Jurisdiction = None) -> Response:
    try:
        open311.check_jurisdiction(jurisdiction_id)
        return _render(_format(fmt), "services", "service", open311.services())
    except open311.Open311Error as exc:
        return _error(fmt if fmt == "xml" else "json", exc)


@router.get(
    "/services/{code}.{fmt}",
    responses=_READ,
    response_class=Response,
    summary="Open311: a service definition (none: no service has metadata)",
)
def get_service_definition(code: str, fmt: Fmt, jurisdiction_id: Jurisdiction = None) -> Response:
    known = any(s["service_code"] == code for s in open311.services())
    reason = "has no definition: its metadata is false" if known else "is not a service_code here"
    return _error(fmt if fmt == "xml" else "json", open311.Open311Error(404, f"service_code {code!r} {reason}"))


@router.get(
    "/requests.{fmt}", responses=_READ, response_class=Response, summary="Open311: service requests, with filters"
)
def get_requests(
    fmt: Fmt,
    request: Request,
    session: SessionDep,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: ListParam = None,
    service_code: ListParam = None,
    status: ListParam = None,
    start_date: DateParam = None,
    end_date: DateParam = None,
) -> Response:
    try:
        _format(fmt)
        _limit(request)
        open311.check_jurisdiction(jurisdiction_id)
        now = dt.datetime.now(dt.UTC)
        start, end = _time("start_date", start_date, "start"), _time("end_date", end_date, "end")
        filters = open311.parse_filter(service_request_id, service_code, status, start, end, now)
        rows = open311.list_requests(session, filters)
        return _render(fmt, "service_requests", "request", rows)
    except open311.Open311Error as exc:
        return _error(fmt if fmt == "xml" else "json", exc)


@router.get(
    "/requests/{request_id}.{fmt}", responses=_READ, response_class=Response, summary="Open311: one service request"
)
def get_request(
    request_id: str, fmt: Fmt, request: Request, session: SessionDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    try:
        _format(fmt)
        _limit(request)
        open311.check_jurisdiction(jurisdiction_id)
        rows = open311.list_requests(session, open311.RequestFilter(ids=[request_id]))
        if not rows:
            raise open311.Open311Error(404, f"service_request_id {request_id!r} is unknown")
        return _render(fmt, "service_requests", "request", rows)
    except open311.Open311Error as exc:
        return _error(fmt if fmt == "xml" else "json", exc)


@router.get(
    "/tokens/{token}.{fmt}",
    responses=_READ,
    response_class=Response,
    summary="Open311: the service_request_id of a POST's token",
)
def get_token(
    token: str, fmt: Fmt, request: Request, session: SessionDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    try:
        _format(fmt)
        _limit(request)
        open311.check_jurisdiction(jurisdiction_id)
        return _render(fmt, "service_requests", "request", [open311.request_by_token(session, token)])
    except open311.Open311Error as exc:
        return _error(fmt if fmt == "xml" else "json", exc)


def _principal(request: Request, key: str | None) -> Principal:
    """The ``api_key``'s principal, admitted like any key (cache, rate limit, refusal audit)."""
    if not request.app.state.settings.auth_enabled:
        return ANONYMOUS_ADMIN
    if not key:
        raise open311.Open311Error(401, "api_key is required to post a service request")
    admission = request.app.state.admission
    try:
        found, principal = admission.cached(key)
        if not found:
            with request_session(request) as session:
                principal = admission.verify(session, key)
        return check_role(admission.admit(request, principal, key), "reporter")
    except HTTPException as exc:
        raise open311.Open311Error(exc.status_code, str(exc.detail)) from None


def _post(request: Request, form: dict[str, Any]) -> dict[str, Any]:
    principal = _principal(request, form.get("api_key"))
    code = form.get("service_code")
    if not code:
        raise open311.Open311Error(400, "service_code is required")
    if code not in {s["service_code"] for s in open311.services()}:
        raise open311.Open311Error(404, f"service_code {code!r} is not a service here")
    name = next(s["service_name"] for s in open311.services() if s["service_code"] == code)
    data = {
        "category": code,
        "description": form.get("description") or name,
        "lon": form.get("long"),
        "lat": form.get("lat"),
        "crs": "wgs84",  # the spec's lat/long are WGS-84
        "address": form.get("address_string"),
        "phone": form.get("phone"),
        "device_id": form.get("device_id"),
        "media_url": form.get("media_url"),
        "lang": "zh",
    }
    ip = request.client.host if request.client else None
    try:
        with request_session(request) as session:
            filed = submit_report(
                session,
                data,
                ip=ip,
                channel="open311",
                actor=f"open311:{principal.name}",
                settings=request.app.state.settings,
            )
    except PublicInputError as exc:
        field = {"lon": "long", "address": "address_string", "category": "service_code"}.get(exc.field, exc.field)
        raise open311.Open311Error(400, f"{field}: {exc.en} (given {exc.value!r})") from None
    return {
        "service_request_id": filed["ticket"],
        "token": filed["open311_token"],
        "service_notice": filed["notice"],
        "account_id": None,
    }


@router.post(
    "/requests.{fmt}",
    responses=_WRITE,
    response_class=Response,
    summary="Open311: post a service request (api_key required)",
)
async def post_request(fmt: Fmt, request: Request) -> Response:
    """Form-encoded as the spec says (JSON is taken too): `api_key`, `service_code`, `lat`+`long` or
    `address_string`, `description`, `media_url`, `device_id`, `phone`; `jurisdiction_id` optional."""
    out = fmt if fmt == "xml" else "json"
    try:
        _format(fmt)
        if request.headers.get("content-type", "").startswith("application/json"):
            parsed = orjson.loads(await request.body())
            form = (
                {k: v for k, v in parsed.items() if isinstance(v, str | int | float)}
                if isinstance(parsed, dict)
                else {}
            )
        else:
            form = {k: v for k, v in (await request.form(max_files=0)).items() if isinstance(v, str)}
        form.update({k: v for k, v in request.query_params.items() if k in ("api_key", "jurisdiction_id")})
        jurisdiction = form.get("jurisdiction_id")
        open311.check_jurisdiction(None if jurisdiction is None else str(jurisdiction))
        answer = await run_in_threadpool(_post, request, form)
        return _render(out, "service_requests", "request", [answer])
    except orjson.JSONDecodeError as exc:
        return _error(out, open311.Open311Error(400, f"the body is not valid JSON: {exc}"))
    except open311.Open311Error as exc:
        return _error(out, exc)
