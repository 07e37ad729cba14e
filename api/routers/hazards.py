"""Hazards (隐患) at the request edge: direct reports, the rectification loop's transitions, raising
an incident, and ``GET /hazards`` with the shared filter semantics (gis.fieldwork.hazardquery)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.auth import Reporter, Viewer
from api.deps import SessionDep, SettingsDep
from api.params import Flag, Values, _split
from api.routers.maps import GEOJSON_OK, GeoJSONResponse, _display_crs, _geojson
from api.schemas.fieldwork import HazardIn, HazardTransitionIn, RaiseIncidentIn
from api.timeparams import TimeWindow, time_window
from gis.core.privacy import mask_record
from gis.fieldwork import hazards, links, maplayers
from gis.fieldwork.hazardquery import HazardFilter, get_hazard, list_hazards

router = APIRouter(prefix="/hazards", tags=["hazards"])

HazardId = Annotated[int, Path(ge=1, le=2**63 - 1, description="hazard id")]
_Window = Annotated[
    TimeWindow,
    Depends(
        time_window(
            start_description="found at or after this time; a bare date is its 00:00",
            end_description="found before this time; a bare date includes that whole day",
        )
    ),
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such hazard (or outside the key's scope)"}}


@router.post(
    "",
    status_code=201,
    summary="Report a hazard directly",
    responses={403: {"description": "the position lies outside the key's scope (nothing stored)"}, **_NOT_FOUND},
)
def post_hazard(body: HazardIn, principal: Reporter, session: SessionDep) -> Any:
    """A hazard at a building or a position, with its category, severity, responsible party and
    rectification deadline (after the finding; default by severity). `incident_id` links the
    incident that revealed it. Outside the key's scope: 403, nothing stored."""
    hazard_id = hazards.report(session, body.model_dump(), principal.name, principal.scope)
    return get_hazard(session, hazard_id, principal.scope)


@router.get("", summary="List hazards with filters")
def list_route(
    principal: Viewer,
    session: SessionDep,
    times: _Window,
    town: Values = None,
    village: Values = None,
    grid: Values = None,
    micro_grid: Values = None,
    station: Values = None,
    beat: Values = None,
    category: Values = None,
    status: Values = None,
    severity: Values = None,
    responsible_party: Values = None,
    source: Values = None,
    open_only: Annotated[bool, Query(alias="open", description="only hazards not rectified")] = False,
    overdue: Flag = None,
    building_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="hazards linked to this incident")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Any:
    """Hazards, newest finding first. Area codes of any level and of the police overlay; several
    values of a field are alternatives; `start`/`end` bound the finding time; `overdue` = marked
    overdue, or open/notified/rectifying past the deadline."""
    flt = HazardFilter(
        town=_split(town), village=_split(village), grid=_split(grid), micro_grid=_split(micro_grid),
        station=_split(station), beat=_split(beat), category=_split(category), status=_split(status),
        severity=_split(severity), responsible_party=_split(responsible_party), source=_split(source),
        open_only=open_only, overdue=overdue, building_id=building_id, incident_id=incident_id,
        start=times.start, end=times.end, scope=principal.scope,
    )  # fmt: skip
    items, total = list_hazards(session, flt, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


# Before /{hazard_id}: that path would take "open.geojson" for an id.
@router.get(
    "/open.geojson",
    response_class=GeoJSONResponse,
    responses=GEOJSON_OK,
    summary="Map layer: unrectified hazards with their status (overdue=true: only overdue; false: the others)",
)
def open_layer(
    principal: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    overdue: bool | None = Query(None, description="true: only the overdue ones; false: only the others"),
    grid: str | None = Query(None, max_length=32, description="only this grid's hazards"),
) -> Response:
    crs = _display_crs(settings)
    return _geojson(lambda: maplayers.hazard_points(session, principal.scope, crs, overdue, grid=grid))


@router.get("/{hazard_id}", summary="One hazard with its history and incidents", responses=_NOT_FOUND)
def get_route(hazard_id: HazardId, principal: Viewer, session: SessionDep) -> Any:
    return mask_record(get_hazard(session, hazard_id, principal.scope), principal.role)


@router.post(
    "/{hazard_id}/transitions",
    summary="Move a hazard along the rectification loop",
    responses={409: {"description": "not allowed from the current status"}, **_NOT_FOUND},
)
def transition_route(hazard_id: HazardId, body: HazardTransitionIn, principal: Reporter, session: SessionDep) -> Any:
    """open → notify (整改通知) → start (整改中) → submit (提交整改) → reinspect with `result` pass
    (rectified) or fail (rectifying again, with `deadline` or the item's period from now). An
    overdue hazard can be started again with a new deadline, submitted or re-inspected."""
    hazards.transition(session, hazard_id, body.model_dump(), principal.name, principal.scope)
    return get_hazard(session, hazard_id, principal.scope)


@router.post(
    "/{hazard_id}/incident",
    status_code=201,
    summary="Raise an incident from a hazard",
    responses={200: {"description": "raised before: the first incident"}, **_NOT_FOUND},
)
def raise_route(
    hazard_id: HazardId,
    principal: Reporter,
    session: SessionDep,
    request: Request,
    body: RaiseIncidentIn | None = None,
) -> Response:
    """An incident at the hazard's position, linked both ways (201); raising again returns the first (200)."""
    data = body.model_dump() if body else {}
    incident, created = links.raise_incident(
        session, hazard_id, data, principal.name, principal.scope, request.app.state.settings
    )
    return JSONResponse(jsonable_encoder(mask_record(incident, principal.role)), status_code=201 if created else 200)
