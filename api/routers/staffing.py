"""/staffing: where the grid teams have gaps (JSON, XLSX and a GeoJSON map layer of the grids);
a scoped key's report, layer and map cover its own areas only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import Viewer
from api.deps import SessionDep, SettingsDep
from api.routers.maps import Key, Lang, _context, _page
from api.timeparams import day_param
from gis.core import audit
from gis.core.privacy import role_sees_personal_data
from gis.people.rules import county_today
from gis.people.staffing import grid_features, report, write_xlsx

router = APIRouter(tags=["staff"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/staffing",
    summary="Staffing report: grids without aux police, workload per worker, micro-grids without a leader, "
    "key villages without community police, postings ending soon",
    responses={200: {"content": {XLSX: {}}, "description": "JSON, or an XLSX workbook with format=xlsx"}},
)
def get_staffing(
    session: SessionDep,
    caller: Viewer,
    on: Annotated[dt.date | None, Depends(day_param("on", "the day to report on (default today, county time)"))],
    within_days: int = Query(30, ge=0, le=366, description="postings ending within this many days"),
    format: str = Query("json", pattern="^(json|xlsx)$"),
) -> Any:
    data = report(
        session,
        on or county_today(),
        within_days=within_days,
        sees_personal_data=role_sees_personal_data(caller.role),
        scope=caller.scope,
    )
    if format == "xlsx":
        name = f"staffing-{data['as_of'].isoformat()}.xlsx"
        # A file leaves the service: audited like every export (names of postings ending soon).
        audit.record(
            session,
            caller.name,
            "export",
            "staffing",
            format="xlsx",
            personal_data=role_sees_personal_data(caller.role),
        )
        return Response(
            write_xlsx(data), media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )
    return data


@router.get("/staffing/grids.geojson", summary="Map layer: every grid with its staffing figures and gaps")
def get_staffing_layer(
    session: SessionDep,
    caller: Viewer,
    on: Annotated[dt.date | None, Depends(day_param("on", "the day to report on (default today, county time)"))],
) -> Any:
    return grid_features(session, on or county_today(), scope=caller.scope)


@router.get("/maps/staffing", response_class=HTMLResponse, summary="Staffing map: grids coloured by team gaps")
def staffing_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    on: Annotated[dt.date | None, Depends(day_param("on", "the day to show (default today, county time)"))],
    lang: Lang = None,
    key: Key = None,
) -> HTMLResponse:
    from maps import staffing_map

    extra = {"on": on.isoformat()} if on else {}
    ctx = _context(request, settings, principal, key, lang, None, **extra)
    return _page(lambda: (staffing_map.build(session, ctx, on or county_today(), principal.scope), ctx))
