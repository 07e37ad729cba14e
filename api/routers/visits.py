"""/visits and /patrols: field work recorded from phones, and its coverage (JSON and GeoJSON layers).

Bad input answers 422 naming the field with its row or point index (``visits[3].kind``,
``points[12].t``) and stores nothing; rows outside the caller's scope answer 404 like missing ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.auth import Reporter, Viewer
from api.deps import SessionDep, SettingsDep
from api.routers.maps import GEOJSON_OK, GeoJSONResponse, _display_crs, _geojson
from api.timeparams import day_param
from gis.fieldwork import coverage, layers, patrols, visits
from gis.fieldwork.errors import FieldworkForbidden, FieldworkInputError, FieldworkNotFound
from gis.people.rules import county_today

router = APIRouter(tags=["field work"])

OnDay = Annotated[dt.date | None, Depends(day_param("on", "the county day (default today)"))]
Days = Annotated[int, Query(ge=1, le=coverage.MAX_DAYS, description="not visited within this many days")]


async def _input_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FieldworkInputError)
    where = "query" if request.method == "GET" else "body"
    item = {"loc": [where, *exc.field.split(".")], "msg": str(exc), "type": "value_error", "input": _shown(exc.value)}
    return JSONResponse({"detail": [item]}, status_code=422)


def _shown(value: object) -> object:
    """The offending value as given when it is a JSON scalar, else a short text form of it."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:200] + "…"


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=403)


EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
    FieldworkInputError: _input_error,
    FieldworkNotFound: _not_found,
    FieldworkForbidden: _forbidden,
}
_VISIT = {
    "client_id": "phone-7f3a:000123",
    "person_id": 12,
    "building_id": 3456,
    "kind": "routine",
    "knows": {"people": True, "family": True, "address": True, "situation": False},
    "lon": 120.9236,
    "lat": 30.8441,
    "crs": "gcj02",
    "at": "2024-05-01T09:30",
}
_VISITS_BODY = Body(
    ...,
    description='one visit, a list of visits, or {"visits": [...]}',
    openapi_examples={
        "one": {"summary": "one visit", "value": _VISIT},
        "batch": {
            "summary": "a phone's batch",
            "value": {"visits": [_VISIT, {**_VISIT, "client_id": "phone-7f3a:000124"}]},
        },
    },
)
_POINTS_BODY = Body(
    ...,
    description="a batch of GPS fixes",
    openapi_examples={
        "batch": {
            "summary": "GCJ-02 fixes",
            "value": {
                "crs": "gcj02",
                "points": [
                    {"lon": 120.9236, "lat": 30.8441, "t": "2024-05-01T14:00:00+08:00"},
                    {"lon": 120.9240, "lat": 30.8443, "t": "2024-05-01T14:00:30+08:00"},
                ],
            },
        }
    },
)
_BODY = Body(..., description="see the endpoint's description")


@router.post(
    "/visits",
    summary='Record household visits (入户走访): one visit, a list, or {"visits": [...]}; idempotent by client_id',
    responses={
        200: {"description": "every visit was already stored (a resend): the stored ones"},
        201: {"description": "stored (per visit: created true, or false for a resend)"},
        404: {"description": "a building, address, person, incident or hazard is missing or outside the scope"},
        422: {"description": "a bad field, named with its row: visits[i].field; nothing is stored"},
    },
)
def post_visits(session: SessionDep, caller: Reporter, payload: Any = _VISITS_BODY) -> JSONResponse:
    """Each visit: ``client_id`` (the phone's id; unique per person), ``person_id`` (default the
    key's person), ``building_id`` or ``address_id``, ``kind`` (routine, night, care, follow_up),
    ``knows`` ({people, family, address, situation}: true/false), ``lon``/``lat``/``crs`` (wgs84,
    gcj02, bd09; default the building's position), ``at`` (default now; not in the future), ``note``,
    ``incident_ids``, ``hazard_ids``."""
    out = visits.record(session, payload, caller)
    created = out["created"] if isinstance(out["created"], bool) else out["created"] > 0
    return JSONResponse(_jsonable(out), status_code=201 if created else 200)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


@router.get("/visits/quota", summary="Every grid worker's visits on a day against the quota (default 10 a day)")
def get_quota(
    session: SessionDep,
    settings: SettingsDep,
    caller: Viewer,
    on: OnDay,
    quota: int | None = Query(None, ge=0, le=1000, description="default: the configured visit_quota"),
) -> Any:
    q = settings.visit_quota if quota is None else quota
    return coverage.quota_report(session, on or county_today(), q, caller.scope)


@router.get("/visits/workers/{person_id}", summary="A worker's visits on a day against the quota")
def get_worker_day(
    person_id: int,
    session: SessionDep,
    settings: SettingsDep,
    caller: Viewer,
    on: OnDay,
    quota: int | None = Query(None, ge=0, le=1000, description="default: the configured visit_quota"),
) -> Any:
    q = settings.visit_quota if quota is None else quota
    return coverage.worker_day(session, person_id, on or county_today(), q, caller.scope)


@router.get("/visits/not-visited", summary="Per grid: buildings (households) not visited within N days")
def get_not_visited(session: SessionDep, caller: Viewer, days: Days = 30) -> Any:
    grids = coverage.unvisited_by_grid(session, days, caller.scope)
    total = sum(g["buildings"] for g in grids.values())
    missed = sum(g["not_visited"] for g in grids.values())
    return {
        "days": days,
        "buildings": total,
        "not_visited": missed,
        "households_not_visited": sum(g["households_not_visited"] for g in grids.values()),
        "grids": grids,
    }


@router.get(
    "/visits/not-visited.geojson",
    response_class=GeoJSONResponse,
    responses=GEOJSON_OK,
    summary="Map layer: buildings not visited within N days (by=building), or grids coloured by the share (by=grid)",
)
def get_not_visited_layer(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: Viewer,
    days: Days = 30,
    by: str = Query("building", pattern="^(building|grid)$"),
) -> Response:
    crs = _display_crs(settings)
    if by == "grid":
        cache = request.app.state.map_layers
        return _geojson(lambda: layers.unvisited_grids(session, days, caller.scope, crs, cache))
    body = layers.unvisited_points_json(session, days, caller.scope, crs)
    return Response(body, media_type="application/geo+json", headers={"Cache-Control": "no-store"})


@router.get(
    "/visits/day.geojson", response_class=GeoJSONResponse, responses=GEOJSON_OK, summary="Map layer: a day's visits"
)
def get_visits_layer(
    session: SessionDep, settings: SettingsDep, caller: Viewer, on: OnDay, grid: str | None = Query(None, max_length=32)
) -> Response:
    crs = _display_crs(settings)
    return _geojson(lambda: layers.visits(session, on or county_today(), caller.scope, crs, grid))


@router.get(
    "/grids/{code}/coverage",
    summary="A grid's coverage: buildings not visited within N days, and the day's patrols' coverage",
)
def get_grid_coverage(
    code: str, session: SessionDep, settings: SettingsDep, caller: Viewer, on: OnDay, days: Days = 30
) -> Any:
    visited = coverage.grid_unvisited(session, code, days, caller.scope)
    patrolled = coverage.grid_patrol_coverage(
        session, code, on or county_today(), caller.scope, cover_m=settings.patrol_cover_m
    )
    return {"grid_code": code, "visits": visited, "patrols": patrolled}


@router.get(
    "/grids/{code}/not-visited.geojson",
    response_class=GeoJSONResponse,
    responses=GEOJSON_OK,
    summary="Map layer: a grid's buildings not visited within N days",
)
def get_grid_not_visited(
    code: str, session: SessionDep, settings: SettingsDep, caller: Viewer, days: Days = 30
) -> Response:
    crs = _display_crs(settings)
    return _geojson(lambda: layers.grid_unvisited_points(session, code, days, caller.scope, crs))


# --- patrols -----------------------------------------------------------------------------------------


@router.post(
    "/patrols",
    status_code=201,
    summary="Start a patrol of a grid: {grid_code, person_id?, posting_id?, started_at?}",
    responses={404: {"description": "no such grid in force (or outside the key's scope), person or posting"}},
)
def post_patrol(session: SessionDep, caller: Reporter, payload: Any = _BODY) -> Any:
    return patrols.start(session, payload, caller)


@router.get(
    "/patrols/tracks.geojson",
    response_class=GeoJSONResponse,
    responses=GEOJSON_OK,
    summary="Map layer: the simplified tracks of a day's patrols",
)
def get_tracks(
    session: SessionDep, settings: SettingsDep, caller: Viewer, on: OnDay, grid: str | None = Query(None, max_length=32)
) -> Response:
    crs = _display_crs(settings)
    return _geojson(lambda: layers.tracks(session, on or county_today(), caller.scope, crs, grid))


@router.get("/patrols/{patrol_id}", summary="A patrol: grid, times, point counts, length")
def get_patrol(patrol_id: int, session: SessionDep, caller: Viewer) -> Any:
    return patrols.get_patrol(session, patrol_id, caller.scope)


@router.post(
    "/patrols/{patrol_id}/points",
    summary="Add a batch of GPS points: {crs: wgs84|gcj02|bd09, points: [{lon, lat, t}]}",
    responses={422: {"description": "a bad point, named points[i].field (e.g. a time in the future); nothing stored"}},
)
def post_points(
    patrol_id: int, session: SessionDep, settings: SettingsDep, caller: Reporter, payload: Any = _POINTS_BODY
) -> Any:
    """Points reached faster than 150 km/h (configurable) from the last kept point are stored
    flagged and left out of the track and coverage (``flagged`` lists their indexes in the batch);
    a point at an instant already stored is a resend and is skipped."""
    return patrols.add_points(session, patrol_id, payload, caller, max_speed_kmh=settings.patrol_max_speed_kmh)


@router.post("/patrols/{patrol_id}/end", summary="End a patrol: {ended_at?} (default now)")
def post_end(patrol_id: int, session: SessionDep, caller: Reporter, payload: Any = Body(None)) -> Any:
    return patrols.end(session, patrol_id, payload, caller)


@router.get("/patrols/{patrol_id}/coverage", summary="Share of the patrol's grid's buildings within 50 m of its track")
def get_patrol_coverage(patrol_id: int, session: SessionDep, settings: SettingsDep, caller: Viewer) -> Any:
    return coverage.patrol_coverage(session, patrol_id, caller.scope, cover_m=settings.patrol_cover_m)
