"""/analysis: hot spots (Getis-Ord Gi*), emerging hot spots and repeat locations, as JSON or GeoJSON.

The definitions are in ``gis.analysis`` (gistar, hotspots, emerging, repeats). Incidents are
selected by the same filter parameters as ``/incidents``; the analysis window is ``date`` +
``period`` (hot spots, emerging) or ``end`` - ``days`` (repeats). Hot spots are computed over the
whole county and a scoped key receives only its own units (``gis.analysis.hotspots``); repeat
locations count only the incidents inside the key's scope.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.auth import Viewer
from api.deps import SessionDep
from api.params import IncidentFilterDep
from api.timeparams import day_param, unprocessable
from gis.analysis.emerging import DEFAULT_WEEKS, MAX_WEEKS, MIN_WEEKS, emerging
from gis.analysis.features import repeats_geojson, units_geojson
from gis.analysis.gistar import DEFAULT_PERMUTATIONS
from gis.analysis.hotspots import MAX_PERMUTATIONS, MIN_PERMUTATIONS, hotspots
from gis.analysis.repeats import (
    DEFAULT_DAYS,
    DEFAULT_MIN_COUNT,
    DEFAULT_RADIUS_M,
    KINDS,
    MAX_DAYS,
    MAX_RADIUS_M,
    repeat_locations,
)
from gis.analysis.units import AnalysisError

router = APIRouter(prefix="/analysis", tags=["analysis"])
GEOJSON = "application/geo+json"
ERRORS: dict[int | str, dict[str, Any]] = {422: {"description": "a parameter is wrong; `detail[].loc` names it"}}

LayerQ = Annotated[Literal["grid", "micro_grid"], Query(description="the units analysed")]
Day = Annotated[
    dt.date | None,
    Depends(
        day_param(
            "date",
            "a day of the period analysed (county time); default: the last complete period (week: Monday-Sunday)",
        )
    ),
]
MeasureQ = Annotated[
    Literal["count", "rate"], Query(description="count: incidents; rate: incidents per 100 households")
]
PValueQ = Annotated[
    Literal["permutation", "analytic"],
    Query(description="permutation: esda's conditional permutation pseudo p; analytic: normal approximation"),
]
PermsQ = Annotated[
    int, Query(ge=MIN_PERMUTATIONS, le=MAX_PERMUTATIONS, description="permutations for p_value=permutation")
]
CrsQ = Annotated[Literal["wgs84", "gcj02"], Query(description="GeoJSON coordinates (map pages: their tiles' CRS)")]
FormatQ = Annotated[Literal["json", "geojson"], Query(description="json rows, or GeoJSON features (polygons/points)")]


def _run(func: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = func(*args, **kwargs)
    except AnalysisError as exc:
        raise unprocessable((exc.field, exc.value, exc.message)) from None
    return result


def _geojson(value: dict[str, Any]) -> Response:
    return Response(orjson.dumps(value), media_type=GEOJSON)


@router.get(
    "/hotspots",
    summary="Hot spots: Getis-Ord Gi* per grid or micro-grid and week or month, FDR-corrected classes",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}, "description": "JSON, or GeoJSON with format=geojson"}},
)
def get_hotspots(
    request: Request,
    principal: Viewer,
    session: SessionDep,
    filters: IncidentFilterDep,
    day: Day,
    layer: LayerQ = "grid",
    period: Annotated[Literal["week", "month"], Query(description="ISO week (Monday) or calendar month")] = "week",
    measure: MeasureQ = "count",
    p_value: PValueQ = "permutation",
    permutations: PermsQ = DEFAULT_PERMUTATIONS,
    format: FormatQ = "json",
    crs: CrsQ = "wgs84",
) -> Any:
    """Per unit: `count` (incidents the filter selects in the period), `rate` (per 100 households),
    `gi_z` (Gi* z-score, binary queen weights including the unit itself), `p` (two-sided) and
    `class`: hot_99/hot_95/hot_90 (z > 0, p below the Benjamini-Hochberg cut-off at that confidence
    over all units), cold_* likewise for z < 0, else not_significant. Computed over the whole county;
    a scoped key receives only the units inside its scope."""
    result = _run(
        hotspots,
        session,
        layer,
        filters,
        period=period,
        day=day,
        measure=measure,
        p_value=p_value,
        permutations=permutations,
    )
    if format == "geojson":
        return _geojson(units_geojson(session, result, cache=request.app.state.map_layers, display_crs=crs))
    return result


@router.get(
    "/emerging",
    summary="Emerging hot spots over the last K weeks: new, intensifying, persistent, diminishing, sporadic, none",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}, "description": "JSON, or GeoJSON with format=geojson"}},
)
def get_emerging(
    request: Request,
    principal: Viewer,
    session: SessionDep,
    filters: IncidentFilterDep,
    day: Day,
    layer: LayerQ = "grid",
    weeks: Annotated[int, Query(ge=MIN_WEEKS, le=MAX_WEEKS, description="weeks analysed (K)")] = DEFAULT_WEEKS,
    measure: MeasureQ = "count",
    p_value: PValueQ = "permutation",
    permutations: PermsQ = DEFAULT_PERMUTATIONS,
    format: FormatQ = "json",
    crs: CrsQ = "wgs84",
) -> Any:
    """Weekly Gi* (as /analysis/hotspots) over the K weeks ending with the week of `date`, and a
    Mann-Kendall trend of each unit's weekly z-scores. H = weeks hot (90%+ after FDR): none (H = 0);
    new (hot in the last week only); intensifying / diminishing / persistent (hot in the last week
    and in at least 90% of the weeks, with an increasing / decreasing / no significant trend at
    alpha 0.05); sporadic (any other unit hot in some week)."""
    result = _run(
        emerging,
        session,
        layer,
        filters,
        day=day,
        weeks=weeks,
        measure=measure,
        p_value=p_value,
        permutations=permutations,
    )
    if format == "geojson":
        return _geojson(units_geojson(session, result, cache=request.app.state.map_layers, display_crs=crs))
    return result


@router.get(
    "/repeats",
    summary="Repeat locations: addresses and buildings with min_count+ incidents in `days` days",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}, "description": "JSON, or GeoJSON points with format=geojson"}},
)
def get_repeats(
    principal: Viewer,
    session: SessionDep,
    filters: IncidentFilterDep,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="look back this many days from `end`")] = DEFAULT_DAYS,
    min_count: Annotated[int, Query(ge=2, le=1000, description="incidents at one place")] = DEFAULT_MIN_COUNT,
    radius_m: Annotated[
        float, Query(gt=0, le=MAX_RADIUS_M, description="nearest address within this distance (metres)")
    ] = DEFAULT_RADIUS_M,
    kind: Annotated[list[Literal["address", "building", "position"]] | None, Query(max_length=3)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    format: FormatQ = "json",
) -> Any:
    """Incidents the filter selects in [end - days, end) (end default now), tied to their address
    (`address_id`, else the nearest standard address within `radius_m`) and its building; places
    with `min_count` or more, most first. Incidents with no address near are grouped by position
    (cells of `radius_m`)."""
    result = _run(
        repeat_locations,
        session,
        filters,
        days=days,
        min_count=min_count,
        radius_m=radius_m,
        kinds=tuple(kind) if kind else KINDS,
        limit=limit,
    )
    if format == "geojson":
        return _geojson(repeats_geojson(result))
    return result
