"""GET /lookup (by coordinate or by address); the batch is api/routers/lookup_batch.py, the
address matching api/routers/lookup_address.py.

Coordinate lookups are answered from memory (gis.spatial.lookup.LookupService), which a background
LISTEN thread (gis.core.notify) keeps current; api.app starts both (api/lookup_service.py).
"""

from __future__ import annotations

import contextlib
import math
from contextlib import AbstractContextManager
from typing import Any, cast

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.auth import authenticate, check_role, presents_a_key
from api.deps import request_session
from api.lookup_service import service_of
from api.routers.lookup_address import lookup_address
from api.schemas.lookup import LookupOut, NotFoundOut
from api.timeparams import TIME_RULE
from gis.core.privacy import role_sees_personal_data
from gis.people.keys import Principal
from gis.spatial.lookupinput import LookupInputError, parse_as_of

router = APIRouter(tags=["lookup"])

MAX_ADDRESS_CHARS = 2000


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
            return await run_in_threadpool(lookup_address, request, service, address, at, sees)
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
