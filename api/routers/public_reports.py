"""The residents' public surface (no staff key): report a matter, follow it with the ticket's
tracking token, rate the result; the category list and the county's outline for the page's map.
The rules live in gis.channels; this module reads bodies, counts the abuse limits and words errors
in the resident's language (``?lang=en`` or Accept-Language; Chinese by default).

Abuse limits are token buckets of the API's rate-limit table (api.rate_limits), counted per device
id and per IP address for reports and per IP address for look-ups; the captcha hook
(gis.channels.captcha) is consulted when one is installed in ``app.state.captcha``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth import Viewer
from api.deps import SessionDep, request_session
from api.timeparams import TimeWindow, time_window, unprocessable
from gis.analysis.kpis import compute_kpis
from gis.channels import categories, ratings
from gis.channels.errors import PublicError, PublicInputError, TooManyReports, pick_lang
from gis.channels.public import submit_report, view_report
from gis.core.timeparse import TimeValueError, check_window
from gis.incidents.filter import IncidentFilter
from gis.outputs.maplayers import layer_geojson
from maps.report_page import report_page

router = APIRouter(tags=["public"])

_MESSAGE = {"description": "the reason in the resident's language (`message`); 422 names the field (`detail[].loc`)"}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such ticket, or the token does not match (the same answer)"},
    409: {"description": "a rating refused: twice, or before the matter is handled"},
    422: _MESSAGE,
    429: {"description": "too many reports from this device or IP address"},
}

Ticket = Annotated[str, Path(pattern=r"^\d{6}-\d{6}$", description="the ticket number, e.g. 261203-482139")]
TokenHeader = Annotated[str | None, Header(alias="X-Ticket-Token", max_length=64, description="the tracking token")]
TokenQuery = Annotated[str | None, Query(max_length=64, description="the tracking token (or the header)")]
Lang = Annotated[str | None, Query(max_length=8, description="zh (default) or en")]


def lang_of(request: Request) -> str:
    return pick_lang(request.query_params.get("lang") or request.headers.get("accept-language"))


async def _public_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PublicError)
    lang = lang_of(request)
    msg = exc.message(lang)
    headers = {"Retry-After": str(max(1, round(exc.wait_s)))} if isinstance(exc, TooManyReports) else None
    if isinstance(exc, PublicInputError):
        item = {"loc": ["body", exc.field], "msg": msg, "type": "value_error", "input": exc.value, "reason": exc.en}
        return JSONResponse({"detail": [item], "message": msg}, status_code=exc.status, headers=headers)
    return JSONResponse({"detail": msg, "message": msg}, status_code=exc.status, headers=headers)


EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
    PublicError: _public_error,
}


def bucket(kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"public\0{kind}\0{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


def count(request: Request, kind: str, value: str | None, limit: int, who: tuple[str, str]) -> None:
    """Take one token of ``kind`` (device, ip, read) for ``value``; 429 when none is left."""
    if not value or not limit:
        return
    wait = request.app.state.admission.limiter.take(bucket(kind, value), limit)
    if wait > 0:
        raise TooManyReports(who[0], who[1], wait)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def read_report(request: Request) -> tuple[dict[str, Any], list[bytes]]:
    """The report's fields and photos: a JSON object, or a multipart form with ``photos`` files."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data") or kind.startswith("application/x-www-form-urlencoded"):
        form = await request.form(max_files=10, max_fields=40)
        data: dict[str, Any] = {}
        photos: list[bytes] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key == "photos":
                    photos.append(await value.read())
            else:
                data[key] = value
        return data, photos
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise PublicInputError("body", None, "请求内容不是有效的 JSON", f"not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise PublicInputError("body", type(body).__name__, "请求内容应为对象", "the body must be a JSON object")
    return body, []


def check_captcha(request: Request, data: dict[str, Any]) -> None:
    check = getattr(request.app.state, "captcha", None)
    if check is None:  # off by default
        return
    answer = data.get("captcha")
    if not isinstance(answer, str) or not check(answer, client_ip(request)):
        raise PublicInputError("captcha", answer, "验证码不正确", "the captcha was not solved")


@router.get("/report", include_in_schema=False)
def get_report_page(request: Request, lang: Lang = None) -> HTMLResponse:
    """The residents' page: report, follow, rate (maps.report_page)."""
    return HTMLResponse(report_page(request.app.state.settings, pick_lang(lang)))


@router.get("/public/areas", summary="The county's towns and villages, for the residents' map")
def public_areas(request: Request, session: SessionDep) -> dict[str, Any]:
    """Names and outlines only (public information), simplified for a phone."""
    cache = request.app.state.map_layers
    features = []
    for layer in ("village", "town"):  # towns last: drawn on top
        features += layer_geojson(session, layer, tolerance_m=20.0, cache=cache)["features"]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                **f,
                "properties": {
                    "code": f["properties"]["code"],
                    "name": f["properties"]["name"],
                    "layer": f["properties"]["layer"],
                },
            }
            for f in features
        ],
    }


@router.get("/public/categories", summary="The resident-facing categories (居民问题类别)")
def public_categories(lang: Lang = None) -> list[dict[str, str]]:
    return categories.category_list(pick_lang(lang))


@router.post(
    "/public/reports",
    status_code=201,
    responses={422: _ANSWERS[422], 429: _ANSWERS[429]},
    summary="Report a matter as a resident (居民上报)",
)
async def post_report(request: Request) -> JSONResponse:
    """JSON, or multipart with up to 9 `photos` (JPEG, PNG, WebP; checked by content). Fields:
    `category` (GET /public/categories), `description`, `lon`+`lat` with `crs` gcj02 (default),
    bd09 or wgs84, or `address`; optional `phone`, `device_id`, `lang`. Answers the ticket number
    and the tracking token (shown only now). A report of the same category near an open matter
    is merged into it (`merged`)."""
    settings = request.app.state.settings
    data, photos = await read_report(request)
    ip = client_ip(request)
    device = data.get("device_id") if isinstance(data.get("device_id"), str) else None
    count(request, "device", device, settings.public_reports_per_device_minute, ("该设备", "device"))
    count(request, "ip", ip, settings.public_reports_per_ip_minute, ("该网络地址", "IP address"))
    check_captcha(request, data)
    data.setdefault("lang", lang_of(request))

    def work() -> dict[str, Any]:
        with request_session(request) as session:
            return submit_report(session, data, ip=ip, photos=photos, settings=settings)

    answer = await run_in_threadpool(work)
    answer.pop("incident_id")  # the staff's id stays theirs
    answer.pop("open311_token")
    headers = {"Location": f"/public/reports/{answer['ticket']}"}
    return JSONResponse(jsonable_encoder(answer), status_code=201, headers=headers)


@router.get(
    "/public/reports/{ticket}",
    responses={404: _ANSWERS[404], 429: _ANSWERS[429]},
    summary="Follow a reported matter (token required)",
)
def get_report(
    ticket: Ticket, request: Request, session: SessionDep, token: TokenQuery = None, x_token: TokenHeader = None
) -> dict[str, Any]:
    """The state, the unit handling it and the masked timeline; nothing about staff or others."""
    count(
        request,
        "read",
        client_ip(request),
        request.app.state.settings.public_reads_per_ip_minute,
        ("该网络地址", "IP address"),
    )
    return view_report(session, ticket, x_token or token, lang_of(request))


@router.post(
    "/public/reports/{ticket}/rating", responses=_ANSWERS, summary="Rate the handling of a matter (满意度评价)"
)
async def post_rating(ticket: Ticket, request: Request, x_token: TokenHeader = None) -> dict[str, Any]:
    """`{"token", "rating": satisfied | basically_satisfied | dissatisfied, "note"}`; once per
    ticket, after the matter is handled. `dissatisfied` reopens the matter."""
    settings = request.app.state.settings
    count(request, "read", client_ip(request), settings.public_reads_per_ip_minute, ("该网络地址", "IP address"))
    data, _ = await read_report(request)
    token = x_token or data.get("token")

    def work() -> dict[str, Any]:
        with request_session(request) as session:
            return ratings.rate(
                session,
                ticket,
                token if isinstance(token, str) else None,
                data.get("rating"),
                data.get("note"),
                settings,
            )

    return await run_in_threadpool(work)


# The window by the one rule (api.timeparams): naive = county time, a bare date end is that whole day.
_SatisfactionWindow = Annotated[
    TimeWindow,
    Depends(time_window(what="incidents reported")),
]


@router.get(
    "/satisfaction",
    responses={422: _MESSAGE},
    summary="Satisfaction per town or village (staff): the KPI `satisfaction_rate` of /kpis, by area",
)
def get_satisfaction(
    principal: Viewer,
    session: SessionDep,
    times: _SatisfactionWindow,
    by: Annotated[str, Query(pattern="^(town|village)$")] = "town",
) -> list[dict[str, Any]]:
    """The incidents reported in [start, end) (default: the 365 days before now) with a callback
    or a resident's rating, per area: the latest result of each, and (satisfied + basically
    satisfied) / rated, as the satisfaction KPI defines it (gis.analysis.kpis)."""
    t1 = times.end or dt.datetime.now(dt.UTC)
    t0 = times.start or t1 - dt.timedelta(days=365)
    try:
        check_window(t0, t1)  # a start alone after now: the window up to now is reversed
    except TimeValueError as exc:
        raise unprocessable(("start", t0.isoformat(), exc.message), ("end", t1.isoformat(), exc.message)) from None
    data = compute_kpis(session, IncidentFilter(scope=principal.scope), t0, t1, group_by=by)
    return [
        {"code": g["key"], "name": g["name"], "rated": g["kpis"]["callbacks"], "rate": g["kpis"]["satisfaction_rate"]}
        for g in data["groups"]
        if g["kpis"]["callbacks"]
    ]
