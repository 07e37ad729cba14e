"""GET /lookup (by coordinate or by address) and POST /lookup/batch.

Coordinate lookups are answered from memory (gis.spatial.lookup.LookupService), which a background
LISTEN thread (gis.core.notify) keeps current; api.app starts both.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import math
from contextlib import AbstractContextManager
from typing import Annotated, Any, cast

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from api import heap
from api.auth import authenticate, check_role, presents_a_key, require
from api.deps import SessionDep, autocommit_connection, request_session
from api.schemas.lookup import BatchOut, LookupOut, NotFoundOut
from api.timeparams import TIME_RULE, as_of_param
from gis.core.notify import Listener, conninfo_from_url
from gis.core.privacy import role_sees_personal_data
from gis.core.settings import Settings
from gis.people.keys import Principal
from gis.spatial.address_text import AddressError
from gis.spatial.crs import to_wgs84
from gis.spatial.geocode import GeocodeResult, geocode, geocode_many
from gis.spatial.lookup import LookupInputError, LookupService, parse_as_of, parse_point

log = logging.getLogger(__name__)
router = APIRouter(tags=["lookup"])

BATCH_LIMIT = 10_000
MAX_ADDRESS_CHARS = 2000


def new_service(settings: Settings) -> LookupService:
    """The app's lookup service (``app.state.lookup``); it settles the heap after each load of
    boundary data when the setting asks for it (api.heap)."""
    return LookupService(
        snap_tolerance_m=settings.snap_tolerance_m, on_loaded=heap.settle if settings.freeze_heap else None
    )


def listen(service: LookupService, engine: Engine) -> Listener:
    """Start the LISTEN thread that reloads the service when boundaries are published, then
    preload the service; the caller stops the listener at shutdown."""

    def state(up: bool) -> None:
        service.listening = up

    listener = Listener(conninfo_from_url(engine.url), service.invalidate, on_state=state)
    listener.start()
    preload(service, engine)
    return listener


def preload(service: LookupService, engine: Engine) -> None:
    """Load the trees and names of the generation in force before the worker takes requests:
    otherwise whichever worker is hit first would load them while requests queue behind it.
    Only the trees are kept (they never change); the generation list and staff are read again
    on the first request, from that request's own view of the database. A database that is down
    at start-up only means the first request loads them."""
    try:
        with engine.connect() as conn:
            service.warm(conn)
    except sa_exc.DBAPIError as exc:
        log.warning("lookup trees not preloaded (%s); the first lookup loads them", exc.__class__.__name__)
    service.invalidate()


def service_of(request: Request) -> LookupService:
    service: LookupService = request.app.state.lookup
    return service


class LazySession:
    """The request's database session, opened only when first used.

    A warm coordinate lookup needs no database at all, and FastAPI would run the ``SessionDep``
    generator in a worker thread twice per request (enter, exit), which costs more than the
    lookup itself. This opens the session from the same source ``SessionDep`` uses
    (``request_session``) the first time ``execute`` is called.
    """

    def __init__(self, request: Request):
        self._request = request
        self._opened: AbstractContextManager[Session] | None = None
        self._session: Session | None = None

    def session(self) -> Session:
        if self._session is None:
            opened = request_session(self._request)
            self._session = opened.__enter__()
            self._opened = opened
        return self._session

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.session().execute(*args, **kwargs)

    def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self.session().scalar(*args, **kwargs)

    def as_conn(self) -> Session:
        # Duck-typed: the lookup and key checks only call execute/scalar.
        return cast(Session, self)

    def close(self, error: BaseException | None) -> None:
        opened, self._opened = self._opened, None
        if opened is None:
            return
        if error is None:
            opened.__exit__(None, None, None)  # commits
        else:
            with contextlib.suppress(BaseException):
                opened.__exit__(type(error), error, error.__traceback__)  # rolls back


def invalid(param: str, reason: str, value: object = None, where: str = "query") -> HTTPException:
    """A 422 in FastAPI's own validation-error shape, naming the parameter."""
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)  # JSON has no NaN or Infinity
    return HTTPException(422, [{"type": "value_error", "loc": [where, param], "msg": reason, "input": value}])


def _sees(caller: Principal | None) -> bool:
    return role_sees_personal_data(caller.role if caller else None)


def _address_block(result: GeocodeResult) -> dict[str, Any]:
    def match(m: Any) -> dict[str, Any]:
        return {
            "address_id": m.address_id,
            "full_text": m.full_text,
            "lon": m.lon,
            "lat": m.lat,
            "score": m.score,
            "precision": m.precision,
        }

    return {
        "query": result.query,
        "normalized": result.normalized,
        "method": result.method,
        "match": match(result.match) if result.match else None,
        "candidates": [match(c) for c in result.candidates],
    }


def _not_found_detail(result: GeocodeResult, threshold: float) -> str:
    if not result.candidates:
        return f"no standard address resembles {result.query!r}"
    best = result.candidates[0]
    return (
        f"no confident match for {result.query!r}: the best candidate scores {best.score:.2f}, "
        f"below the threshold {threshold:.2f}; see the candidates"
    )


LON_EXAMPLES = {"wgs84": {"summary": "a point in Jiashan", "value": 120.9215}}
LOOKUP_DESCRIPTION = """
Which county, town (镇/街道), village (村/社区), grid (网格), micro-grid (微网格), police station
(派出所) and beat (警格) cover a point or a standard address, and who serves the grid.

**By coordinate**: `lon`, `lat` and `crs` (`wgs84` default, `gcj02` for Amap/WeChat/Tencent,
`bd09` for Baidu). A point on a shared edge belongs to exactly one grid (the smaller code), the
same rule as stored assignments. A point just outside the county (within the snap tolerance,
50 m by default) is `snapped` to the nearest unit; farther away it is `outside_jurisdiction`.
With `open_coordinate_lookups` on, coordinate lookups need no key.

**By address**: `address` is normalised (浙江省/嘉兴市/嘉善县 prefix optional, full-width
characters, 十二号 = 12号, 栋/座/号楼 = 幢 ...) and matched against the standard address table,
exactly first, then fuzzily. A match below the confidence threshold is not a match: the answer is
404 with up to 5 candidates.

`as_of` (a date, or date-time) answers with the boundaries in force then. Staff names and phones
are masked for roles below dispatcher.
"""


def _param(name: str, description: str, schema: dict[str, Any], examples: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        "examples": {k: {"value": v} for k, v in examples.items()},
    }


# The parameters are read from the query string by hand (see ``lookup``), so they are declared
# to OpenAPI here.
LOOKUP_PARAMETERS = [
    _param("lon", "longitude in `crs`", {"type": "number", "minimum": -180, "maximum": 180}, {"Jiashan": 120.9215}),
    _param("lat", "latitude in `crs`", {"type": "number", "minimum": -90, "maximum": 90}, {"Jiashan": 30.8412}),
    _param(
        "crs",
        "coordinate system of lon/lat: wgs84 (GPS), gcj02 (Amap, WeChat, Tencent), bd09 (Baidu)",
        {"type": "string", "enum": ["wgs84", "gcj02", "bd09"], "default": "wgs84"},
        {"WGS-84": "wgs84", "Amap": "gcj02", "Baidu": "bd09"},
    ),
    _param(
        "address",
        "a standard address (标准地址), instead of lon/lat; needs a key even when coordinate lookups are open",
        {"type": "string", "minLength": 1, "maxLength": MAX_ADDRESS_CHARS},
        {"full": "浙江省嘉兴市嘉善县魏塘街道中山路128号3幢", "variant": "魏塘街道中山路一百二十八号3栋"},
    ),
    _param(
        "as_of",
        "answer with the boundaries in force at this date (end of that day) or date-time. " + TIME_RULE,
        {"type": "string"},
        {"date": "2024-01-01", "date-time": "2024-01-01T08:00:00+08:00"},
    ),
]


@router.get(
    "/lookup",
    response_model=LookupOut,
    summary="Which grid, micro-grid and police beat cover a coordinate or an address",
    description=LOOKUP_DESCRIPTION,
    openapi_extra={"parameters": LOOKUP_PARAMETERS},
    responses={
        401: {"description": "no API key, or an unknown one (unless coordinate lookups are open)"},
        404: {"model": NotFoundOut, "description": "no confident address match; candidates attached"},
        422: {"description": "a parameter is missing or unusable; `loc` names it"},
    },
)
async def lookup(request: Request) -> Any:
    # The hot path of the service: FastAPI's per-request parameter and dependency solving costs
    # several times the lookup itself, so this handler takes the bare request, reads its query
    # string, checks the key and opens a database session only when needed.
    query = request.query_params
    lon, lat, crs = query.get("lon"), query.get("lat"), query.get("crs") or "wgs84"
    address, as_of = query.get("address"), query.get("as_of")
    db = LazySession(request)
    try:
        caller = _caller(request, db, by_address=address is not None)
        response = await _lookup(request, db, caller, lon, lat, crs, address, as_of)
    except BaseException as exc:
        db.close(exc)
        raise
    db.close(None)
    return response


def _caller(request: Request, db: LazySession, *, by_address: bool) -> Principal | None:
    """Viewer or above; no key at all is accepted for coordinate lookups when the setting
    ``open_coordinate_lookups`` is on (the caller then sees staff contacts masked). Keys are
    checked through api.auth's short cache, so the database is rarely touched here."""
    settings = request.app.state.settings
    if (
        settings.open_coordinate_lookups
        and not by_address
        and not presents_a_key(request.headers, request.query_params.get("key"))
    ):
        return None
    principal: Principal = check_role(authenticate(request, db.as_conn()), "viewer")
    return principal


async def _lookup(
    request: Request,
    db: LazySession,
    caller: Principal | None,
    lon: str | None,
    lat: str | None,
    crs: str,
    address: str | None,
    as_of: str | None,
) -> JSONResponse:
    service = service_of(request)
    sees = _sees(caller)
    try:
        at = parse_as_of(as_of)
        if address is not None:
            if lon is not None or lat is not None:
                raise LookupInputError("address", "give either address or lon and lat, not both")
            if len(address) > MAX_ADDRESS_CHARS:
                raise LookupInputError("address", f"is {len(address):,} characters long, at most {MAX_ADDRESS_CHARS:,}")
            # Address matching queries the database: in a worker thread, with a connection of its
            # own opened and returned there, so not even the commit waits on the event loop.
            return await run_in_threadpool(_lookup_address, request, service, address, at, sees)
        if lon is None and lat is None:
            raise LookupInputError("lon", "lon and lat are required (or give address)")
        if not service.ready(at):
            await run_in_threadpool(service.warm, db.as_conn(), at)
        # Warm: answered from memory, inline (tens of microseconds; no thread hop needed).
        answer = service.lookup_one(db.as_conn(), lon, lat, crs, at=at, sees_personal_data=sees)  # type: ignore[arg-type]
    except LookupInputError as exc:
        value = {"lon": lon, "lat": lat, "crs": crs, "as_of": as_of, "address": address}.get(exc.param)
        if exc.param == "address" and isinstance(value, str) and len(value) > 100:
            value = value[:100] + "…"
        raise invalid(exc.param, exc.reason, value) from None
    answer.setdefault("hint", None)
    answer["address"] = None
    return JSONResponse(answer)


def _lookup_address(request: Request, service: LookupService, address: str, at: Any, sees: bool) -> JSONResponse:
    with autocommit_connection(request) as conn:
        return _answer_address(request, conn, service, address, at, sees)


def _answer_address(
    request: Request, conn: Connection, service: LookupService, address: str, at: Any, sees: bool
) -> JSONResponse:
    threshold = request.app.state.settings.geocode_min_score
    try:
        result = geocode(conn, address, threshold=threshold)
    except AddressError as exc:
        raise LookupInputError("address", str(exc)) from None
    block = _address_block(result)
    if result.match is None:
        return JSONResponse(
            {"detail": _not_found_detail(result, threshold), "error": "address_not_found", "address": block},
            status_code=404,
        )
    answer = service.lookup_point(conn, result.match.lon, result.match.lat, at=at, sees_personal_data=sees)
    answer["input"] = None
    answer["hint"] = None
    answer["address"] = block
    return JSONResponse(answer)


# --- batch ---------------------------------------------------------------------------------

BATCH_DESCRIPTION = f"""
Up to {BATCH_LIMIT:,} coordinates and/or addresses in one request, answered in input order.

Send either a JSON array of items, each `{{"lon": .., "lat": .., "crs": "wgs84"}}` (crs optional)
or `{{"address": ".."}}`, or a CSV file (as the body with `Content-Type: text/csv`, or as the
multipart field `file`) with a header naming `lon`, `lat`, `crs` and/or `address` columns.
A bad item is reported in its place (`ok: false`, `error.field` names the field) without failing
the others. Coordinates are assigned together in one vectorised pass. `as_of` applies to all.
"""

BATCH_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "maxItems": BATCH_LIMIT,
                    "items": {
                        "type": "object",
                        "properties": {
                            "lon": {"type": "number"},
                            "lat": {"type": "number"},
                            "crs": {"type": "string", "enum": ["wgs84", "gcj02", "bd09"]},
                            "address": {"type": "string", "maxLength": MAX_ADDRESS_CHARS},
                        },
                    },
                },
                "example": [
                    {"lon": 120.9215, "lat": 30.8412},
                    {"lon": 120.9262, "lat": 30.8388, "crs": "gcj02"},
                    {"address": "魏塘街道中山路128号3幢"},
                ],
            },
            "text/csv": {"schema": {"type": "string"}, "example": "lon,lat,crs\n120.9215,30.8412,wgs84\n"},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
        "required": True,
    }
}


async def _read_items(request: Request) -> list[Any]:
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise invalid("file", "the multipart upload needs a CSV file in the field 'file'", where="body")
        return _csv_items(await upload.read())
    body = await request.body()
    if ctype.startswith("text/csv") or ctype.startswith("application/csv"):
        return _csv_items(body)
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise invalid("items", f"the body is not JSON ({exc}); send a JSON array or a CSV file", where="body") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise invalid("items", "the body must be a JSON array of items", where="body")
    return data


def _csv_items(raw: bytes) -> list[Any]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")  # spreadsheets saved on Chinese Windows
        except UnicodeDecodeError:
            raise invalid("file", "the CSV is neither UTF-8 nor GB18030 text", where="body") from None
    # newline="": the csv module reads line ends itself (a bare CR is one), as its documentation asks.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        if not ({"lon", "lat"} <= columns or "address" in columns):
            msg = f"the CSV header {sorted(columns)} has neither lon and lat nor address"
            raise invalid("file", msg, where="body")
        rows = list(reader)
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise invalid("file", f"the CSV is malformed: {exc}", where="body") from None
    items = []
    for row in rows:
        clean = {(k or "").strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        items.append({k: v for k, v in clean.items() if k in ("lon", "lat", "crs", "address") and v not in ("", None)})
    return items


@router.post(
    "/lookup/batch",
    response_model=BatchOut,
    summary="Look up many coordinates and/or addresses at once (JSON or CSV)",
    description=BATCH_DESCRIPTION,
    openapi_extra=BATCH_BODY,
    responses={422: {"description": "the body is unusable or has more than 10,000 items"}},
)
async def lookup_batch(
    request: Request,
    session: SessionDep,
    caller: Annotated[Principal, Depends(require("viewer"))],
    at: Annotated[dt.datetime | None, Depends(as_of_param())] = None,
) -> Any:
    items = await _read_items(request)
    if len(items) > BATCH_LIMIT:
        raise invalid("items", f"{len(items):,} items is over the limit of {BATCH_LIMIT:,} per request", where="body")
    threshold = request.app.state.settings.geocode_min_score
    results = await run_in_threadpool(run_batch, session, service_of(request), items, at, _sees(caller), threshold)
    ok = sum(1 for r in results if r["ok"])
    return JSONResponse({"count": len(results), "ok": ok, "failed": len(results) - ok, "results": results})


def _fail(index: int, field: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "ok": False, "error": {"field": field, "message": message}, "result": None, **extra}


def run_batch(
    session: Session, service: LookupService, items: list[Any], at: Any, sees: bool, threshold: float
) -> list[dict[str, Any]]:
    """Validate every item, assign all coordinates in one pass, geocode the addresses."""
    out: list[dict[str, Any] | None] = [None] * len(items)
    points: list[tuple[int, float, float, str]] = []
    addresses: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            out[i] = _fail(i, "item", f"expected an object with lon/lat or address, got {type(item).__name__}")
            continue
        if "address" in item and item["address"] is not None:
            text = item["address"]
            if "lon" in item or "lat" in item:
                out[i] = _fail(i, "address", "give either address or lon and lat, not both")
            elif not isinstance(text, str):
                out[i] = _fail(i, "address", f"must be a string, got {type(text).__name__}")
            elif len(text) > MAX_ADDRESS_CHARS:
                out[i] = _fail(i, "address", f"is {len(text):,} characters long, at most {MAX_ADDRESS_CHARS:,}")
            else:
                addresses.append((i, text))
            continue
        try:
            lon, lat, crs = parse_point(item.get("lon"), item.get("lat"), item.get("crs") or "wgs84")
            service.check_range(session, lon, lat, at=at)
        except LookupInputError as exc:
            out[i] = _fail(i, exc.param, exc.reason)
            continue
        points.append((i, lon, lat, crs.value))

    if points:
        idx = np.array([p[0] for p in points])
        lon_in = np.array([p[1] for p in points])
        lat_in = np.array([p[2] for p in points])
        crs_in = np.array([p[3] for p in points], dtype=object)
        lon_w, lat_w = lon_in.copy(), lat_in.copy()
        for crs in set(crs_in.tolist()) - {"wgs84"}:
            sel = crs_in == crs
            lon_w[sel], lat_w[sel] = to_wgs84(lon_in[sel], lat_in[sel], crs)
        answers = service.lookup(session, lon_w, lat_w, at=at, sees_personal_data=sees)
        for k, answer in enumerate(answers):
            answer["input"] = {"lon": float(lon_in[k]), "lat": float(lat_in[k]), "crs": crs_in[k]}
            answer["hint"] = None
            answer["address"] = None
            out[int(idx[k])] = {"index": int(idx[k]), "ok": True, "error": None, "result": answer}

    if addresses:
        found = geocode_many(session, [t for _, t in addresses], threshold=threshold)
        matched: list[tuple[int, GeocodeResult]] = []
        for (i, _), res in zip(addresses, found, strict=True):
            if isinstance(res, AddressError):
                out[i] = _fail(i, "address", str(res))
            elif res.match is None:
                block = _address_block(res)
                out[i] = _fail(i, "address", _not_found_detail(res, threshold), candidates=block["candidates"])
            else:
                matched.append((i, res))
        if matched:
            answers = service.lookup(
                session,
                [r.match.lon for _, r in matched if r.match],
                [r.match.lat for _, r in matched if r.match],
                at=at,
                sees_personal_data=sees,
            )
            for (i, res), answer in zip(matched, answers, strict=True):
                answer["input"] = None
                answer["hint"] = None
                answer["address"] = _address_block(res)
                out[i] = {"index": i, "ok": True, "error": None, "result": answer}
    return [r for r in out if r is not None]
