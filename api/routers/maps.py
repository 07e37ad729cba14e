"""Map pages (HTML) and the GeoJSON they fetch (their JS/CSS is served from /static/vendor, api.app).

Browsers cannot send headers when navigating, so map pages take the API key as ``?key=`` (as every
endpoint does, api.auth); the pages pass it on to every URL they fetch.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import Viewer
from api.deps import SessionDep, SettingsDep
from api.params import IncidentFilterDep
from gis.outputs import mapdata
from gis.outputs.mapdata import IncidentFilter, MapQueryError
from gis.people.keys import Principal
from maps import beat_page, command_center, grid_dashboard, heat_time
from maps.i18n import UnknownLanguageError
from maps.page import PageContext, render

router = APIRouter(prefix="/maps", tags=["maps"])
LIVE_HOURS = 3.0
LIVE_LIMIT = 200


def _windowed(flt: IncidentFilter, default: str) -> IncidentFilter:
    """``flt`` with the page's default report window when the request chose none."""
    if flt.window:
        return flt
    try:
        return mapdata.with_window(flt, None, default)
    except MapQueryError as exc:
        raise HTTPException(422, str(exc)) from None


def _week(flt: IncidentFilterDep) -> IncidentFilter:
    return _windowed(flt, "7d")


Filter = Annotated[IncidentFilter, Depends(_week)]


def _context(
    request: Request,
    settings: Any,
    principal: Principal,
    key: str | None,
    lang: str | None,
    flt: IncidentFilter | None = None,
    **extra: str,
) -> PageContext:
    query = {**(flt.query() if flt else {}), **extra}
    try:
        return PageContext.from_settings(
            settings,
            lang=lang or "zh",
            role=principal.role,
            key=key,
            base_url=request.scope.get("root_path", ""),
            extra_query=query,
            layer_cache=request.app.state.map_layers,
            scope=principal.scope,
        )
    except (UnknownLanguageError, MapQueryError) as exc:
        raise HTTPException(422, str(exc)) from None


def _page(build: Any) -> HTMLResponse:
    try:
        m, ctx = build()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return HTMLResponse(render(m, ctx), headers={"Cache-Control": "no-store"})


Lang = Annotated[str | None, Query(description="zh (default) or en")]
Key = Annotated[str | None, Query(description="API key, for browsers")]


@router.get("/command-center", response_class=HTMLResponse, summary="Command-centre map (指挥中心综合态势图)")
def command_center_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    flt: Filter,
    lang: Lang = None,
    key: Key = None,
    campaign: int | None = Query(None, ge=1, le=2**31 - 1, description="the campaign shown (default: the active one)"),
) -> HTMLResponse:
    ctx = _context(request, settings, principal, key, lang, flt, **({"campaign": str(campaign)} if campaign else {}))
    return _page(lambda: (command_center.build(session, ctx, flt), ctx))


@router.get("/heatmap/time", response_class=HTMLResponse, summary="Incident heat animated by hour or day")
def heat_time_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    filters: IncidentFilterDep,
    by: str = Query("hour", description="hour (of day) or day"),
    lang: Lang = None,
    key: Key = None,
) -> HTMLResponse:
    flt = _windowed(filters, "30d")
    ctx = _context(request, settings, principal, key, lang, flt, by=by)
    return _page(lambda: (heat_time.build(session, ctx, flt, by), ctx))


@router.get("/grids/{code}", response_class=HTMLResponse, summary="One grid's dashboard")
def grid_page(
    code: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    filters: IncidentFilterDep,
    lang: Lang = None,
    key: Key = None,
) -> HTMLResponse:
    flt = _windowed(filters, "90d")
    ctx = _context(request, settings, principal, key, lang, flt)
    if not principal.scope.contains(code):  # outside the caller's scope: as if it did not exist
        _found(None, "grid", code)
    return _page(lambda: (_found(grid_dashboard.build(session, ctx, code, flt), "grid", code), ctx))


@router.get("/beats/{code}", response_class=HTMLResponse, summary="A police beat and the grids it overlaps")
def beat_page_view(
    code: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    flt: Filter,
    lang: Lang = None,
    key: Key = None,
) -> HTMLResponse:
    ctx = _context(request, settings, principal, key, lang, flt)
    if not principal.scope.contains(code):  # as GET /beats/{code}: police scopes or the whole county
        _found(None, "beat", code)
    return _page(lambda: (_found(beat_page.build(session, ctx, code, flt), "beat", code), ctx))


def _found(m: Any, kind: str, code: str) -> Any:
    if m is None:
        raise HTTPException(404, f"no {kind} with code {code!r} in the boundaries in force")
    return m


# --- data the pages fetch ----------------------------------------------------------------------


def _display_crs(settings: Any) -> str:
    return str(settings.tile_crs) if settings.tile_url else "wgs84"


class GeoJSONResponse(Response):
    """Declares ``application/geo+json`` in the OpenAPI document, as these endpoints answer."""

    media_type = "application/geo+json"


FEATURE_COLLECTION = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": {"type": "object"}}},
}
GEOJSON_OK: dict[int | str, dict[str, Any]] = {
    200: {"description": "a FeatureCollection", "content": {"application/geo+json": {"schema": FEATURE_COLLECTION}}}
}


def geojson_get(path: str, summary: str) -> Any:
    return router.get(path, response_class=GeoJSONResponse, responses=GEOJSON_OK, summary=summary)


def _geojson(fetch: Any, media_type: str = "application/geo+json") -> Response:
    # Bad arguments (unknown layer, bad filter value) are ValueErrors naming the field.
    try:
        data = fetch()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})


@geojson_get("/data/layers/{layer}.geojson", summary="A boundary layer in force, simplified for display")
def layer_data(
    layer: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    parent: str | None = Query(None, description="only units with this parent code"),
) -> Response:
    return _geojson(
        lambda: mapdata.layer_geojson(
            session,
            layer,
            parent_codes=[parent] if parent else None,
            display_crs=_display_crs(settings),
            cache=request.app.state.map_layers,
            scope=principal.scope,
        )
    )


@geojson_get("/data/incidents/live.geojson", summary="Incidents received in the last hours (live layer)")
def live_incidents(
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    filters: IncidentFilterDep,
    hours: float = Query(LIVE_HOURS, gt=0, le=24 * 7, description="how far back"),
) -> Response:
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(hours=hours)

    def fetch() -> dict[str, Any]:
        # "Live" means received in the last hours; a report time up to a day older is a late upload.
        flt = filters.replace(start=since - dt.timedelta(days=1), end=now + dt.timedelta(minutes=5), window="custom")
        return mapdata.recent_incidents(
            session, flt, created_since=since, limit=LIVE_LIMIT, role=principal.role, display_crs=_display_crs(settings)
        )

    return _geojson(fetch)


@geojson_get("/data/incidents/{flag}.geojson", summary="Overdue, or open escalated, incidents (map markers)")
def flagged_data(
    flag: Annotated[Literal["overdue", "escalated"], Path(description="overdue or escalated")],
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    flt: IncidentFilterDep,
) -> Response:
    """`overdue`: pending (reported, accepted, dispatched, in progress) and past the deadline;
    `escalated`: open and escalated above the grid (its own marker, not overdue). Whatever the report
    time: the window is ignored, the other filters apply."""
    return _geojson(
        lambda: mapdata.flagged_incidents(
            session,
            flt,
            flag,
            limit=command_center.OVERDUE_LIMIT,
            role=principal.role,
            display_crs=_display_crs(settings),
        )
    )


@geojson_get("/data/buildings.geojson", summary="Rental buildings with inspection results, by risk")
def buildings_data(
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    risk: str | None = Query(None, description="comma-separated: high, medium, low"),
    grid: str | None = None,
) -> Response:
    levels = [r for r in (risk or "").split(",") if r]
    return _geojson(
        lambda: mapdata.rental_buildings(
            session,
            risk_levels=levels,
            grid_code=grid,
            role=principal.role,
            display_crs=_display_crs(settings),
            scope=principal.scope,
        )
    )


@geojson_get("/data/hazards.geojson", summary="Hazard points by category and status")
def hazards_data(
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    category: str | None = None,
    status: str | None = None,
    grid: str | None = None,
) -> Response:
    return _geojson(
        lambda: mapdata.hazard_points(
            session,
            categories=[c for c in (category or "").split(",") if c],
            statuses=[s for s in (status or "").split(",") if s],
            grid_code=grid,
            display_crs=_display_crs(settings),
            scope=principal.scope,
        )
    )


@router.get("/data/heat.json", summary="Heat points [lat, lon, weight] (aggregated above the threshold)")
def heat_data(session: SessionDep, settings: SettingsDep, principal: Viewer, flt: Filter) -> Response:
    def fetch() -> dict[str, Any]:
        heat = mapdata.heat_data(session, flt, settings.heat_point_threshold, display_crs=_display_crs(settings))
        return {"total": heat.total, "aggregated": heat.aggregated, "cell_m": heat.cell_m, "points": heat.points}

    return _geojson(fetch, "application/json")


@router.get("/data/grids/stats.json", summary="Per-grid counts, staff and households for the window")
def grid_stats_data(session: SessionDep, principal: Viewer, flt: Filter) -> Response:
    """Per grid (those of `grid` when given, as the other filters name them): incidents reported in
    the window and done, the current open, pending, overdue and escalated counts, rentals, open
    hazards and staff."""
    codes = list(flt.grid) or None
    return _geojson(lambda: mapdata.grid_stats(session, flt, codes=codes, role=principal.role), "application/json")
