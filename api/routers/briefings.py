"""The weekly briefing (每周会商研判): JSON, XLSX and its map page; and the per-grid KPI layer of
the command centre. The figures are assembled in gis.analysis.briefing from the modules that define
them; a scoped key gets its own areas only, and a town outside its scope is answered 404."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import Viewer
from api.deps import SessionDep, SettingsDep
from api.routers.maps import Filter, Key, Lang, _context, _page
from api.timeparams import unprocessable
from gis.analysis.briefing import BriefingError, check_town, parse_week, weekly_briefing
from gis.analysis.briefing_xlsx import write_xlsx
from gis.analysis.gistar import DEFAULT_PERMUTATIONS
from gis.analysis.hotspots import MAX_PERMUTATIONS, MIN_PERMUTATIONS
from gis.analysis.kpis import KpiInputError
from gis.analysis.units import AnalysisError
from gis.core import audit
from gis.people.keys import Principal
from maps import briefing_page, kpi_layer

router = APIRouter(tags=["analysis"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such town in force, or outside the key's scope"},
    422: {"description": "a parameter is wrong; `detail[].loc` names it"},
}

WeekQ = Annotated[
    str | None,
    Query(
        max_length=20,
        description="ISO week `2026-W48` (or a day of it, `2026-11-23`); default the last complete week (county time)",
    ),
]
TownQ = Annotated[
    str | None, Query(max_length=32, description="a town code: that town's briefing (default the county)")
]
PValueQ = Annotated[Literal["permutation", "analytic"], Query(description="hot spots' p-value, as /analysis/hotspots")]
PermsQ = Annotated[int, Query(ge=MIN_PERMUTATIONS, le=MAX_PERMUTATIONS, description="hot spots' permutations")]


def _briefing(
    session: Any, principal: Principal, week: str | None, town: str | None, p_value: Any, permutations: int
) -> dict[str, Any]:
    try:
        monday = parse_week(week) if week else None
        if town and check_town(session, town, principal.scope) is None:
            raise HTTPException(404, f"no town with code {town!r} in the boundaries in force (in your scope)")
        return weekly_briefing(
            session, scope=principal.scope, town=town, week=monday, p_value=p_value, permutations=permutations
        )
    except BriefingError as exc:
        raise unprocessable((exc.field, exc.value, str(exc))) from None
    except (AnalysisError, KpiInputError) as exc:
        raise unprocessable((exc.field, exc.value, str(exc))) from None


@router.get(
    "/briefings/weekly",
    summary="Weekly briefing (每周会商研判) of the county or a town: KPIs and their changes, backlog, overdue "
    "hazards, hot spots new this week, repeat locations, rising categories",
    responses=NOT_FOUND,
)
def get_weekly(
    principal: Viewer,
    session: SessionDep,
    week: WeekQ = None,
    town: TownQ = None,
    p_value: PValueQ = "permutation",
    permutations: PermsQ = DEFAULT_PERMUTATIONS,
) -> Any:
    """`kpis`: gis.analysis.kpis for the incidents reported in the week (total, and per town, or per
    village of the town), each with `vs_previous` (the week before) and `vs_last_year` (the same ISO
    week a year earlier). `backlog` and `hazards`: open / overdue now. `hotspots`: grids hot this week
    (Gi*) and grids newly hot (emerging, 8 weeks). `repeats`: 3+ incidents at one place in 30 days,
    active this week. `categories`: this week's count against the mean of the 4 weeks before;
    `rising` names those above it."""
    return _briefing(session, principal, week, town, p_value, permutations)


@router.get(
    "/briefings/weekly.xlsx",
    summary="The weekly briefing as an XLSX workbook (one sheet per section)",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "an XLSX workbook"}, **NOT_FOUND},
)
def get_weekly_xlsx(
    principal: Viewer,
    session: SessionDep,
    week: WeekQ = None,
    town: TownQ = None,
    p_value: PValueQ = "permutation",
    permutations: PermsQ = DEFAULT_PERMUTATIONS,
) -> Response:
    data = _briefing(session, principal, week, town, p_value, permutations)
    audit.record(session, principal.name, "export", "briefing", format="xlsx", week=data["week"], town=town)
    name = f"briefing-{data['week']}-{town or 'county'}.xlsx"
    return Response(
        write_xlsx(data), media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/maps/briefing", response_class=HTMLResponse, summary="Weekly briefing page: maps, charts, tables")
def briefing_view(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    week: WeekQ = None,
    town: TownQ = None,
    p_value: PValueQ = "permutation",
    permutations: PermsQ = DEFAULT_PERMUTATIONS,
    lang: Lang = None,
    key: Key = None,
) -> HTMLResponse:
    extra = {k: v for k, v in (("week", week), ("town", town)) if v}
    ctx = _context(request, settings, principal, key, lang, None, **extra)
    data = _briefing(session, principal, week, town, p_value, permutations)
    return _page(lambda: (briefing_page.build(session, ctx, data), ctx))


@router.get(
    "/maps/data/grids/kpis.geojson",
    summary="Grids with their KPIs for the window (the command centre's KPI choropleth)",
    responses={200: {"content": {"application/geo+json": {}}, "description": "a FeatureCollection"}},
)
def grid_kpis_data(
    request: Request, session: SessionDep, settings: SettingsDep, principal: Viewer, flt: Filter
) -> Response:
    """Per grid inside the key's scope: the KPIs (gis.analysis.kpis, grouped by grid) of the incidents
    the filters select in the window (default the last 7 days), with the grid's simplified polygon."""
    crs = str(settings.tile_crs) if settings.tile_url else "wgs84"
    try:
        data = kpi_layer.grid_kpis(
            session, flt, scope=principal.scope, display_crs=crs, cache=request.app.state.map_layers
        )
    except (KpiInputError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    return Response(orjson.dumps(data), media_type="application/geo+json", headers={"Cache-Control": "no-store"})
