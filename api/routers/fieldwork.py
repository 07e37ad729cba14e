"""Field work at the request edge: buildings with their inspection history, inspections,
checklists and the risk intervals. The rules live in gis.fieldwork; this module turns its errors
into answers (422 naming the field via the incident handlers' shape, 404, 403, 409)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.auth import Admin, Planner, Reporter, Viewer
from api.deps import SessionDep, SettingsDep
from api.routers.maps import GEOJSON_OK, GeoJSONResponse, _display_crs, _geojson
from api.schemas.fieldwork import ChecklistIn, InspectionIn, RiskIntervalIn
from gis.core.privacy import mask_name, mask_record, role_sees_personal_data
from gis.core.vocab import CHECKLIST_KINDS, RISK_LEVELS
from gis.fieldwork import buildings, checklists, inspections, maplayers
from gis.fieldwork.common import NotFound
from gis.fieldwork.hazards import IllegalHazardTransition
from gis.fieldwork.links import OutsideScope

router = APIRouter(tags=["field work"])

BuildingId = Annotated[int, Path(ge=1, le=2**63 - 1, description="building id")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such building (or outside the key's scope)"}}
_VALIDATION: dict[int | str, dict[str, Any]] = {
    422: {"description": "a field is wrong; `detail[].loc` names it (e.g. results[2].code) and `msg` says why"}
}


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=403)


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IllegalHazardTransition)
    body = {"detail": str(exc), "current_status": exc.current, "requested": exc.requested, "allowed": list(exc.allowed)}
    return JSONResponse(body, status_code=409)


# Input errors are IncidentInputError subclasses: the incidents' 422 handler answers them.
EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
    NotFound: _not_found,
    OutsideScope: _forbidden,
    IllegalHazardTransition: _conflict,
}


@router.post(
    "/buildings/{building_id}/inspections",
    status_code=201,
    summary="Record an inspection (检查) of a building",
    responses={200: {"description": "a resend (same client_id): the first inspection"}, **_NOT_FOUND, **_VALIDATION},
)
def post_inspection(building_id: BuildingId, body: InspectionIn, principal: Reporter, session: SessionDep) -> Any:
    """A joint inspection: `inspectors` (posting ids), each checked item's `result` (pass, fail, na)
    from the checklist version (`checklist_kind`, `checklist_version`; default the latest rental
    safety checklist), time, position and notes. A failed item opens a hazard with the item's
    severity and deadline; a building's open hazards of the same items are re-inspected (pass:
    rectified; fail: rectifying with a new deadline). The building's risk level and next
    inspection date follow. Nothing is stored when any value is refused. A resend with the same
    `client_id` (a phone that lost its signal) answers 200 with the first inspection."""
    data = body.model_dump()
    data["results"] = [r.model_dump() for r in body.results]
    out = inspections.record(session, building_id, data, principal.name, principal.scope)
    return JSONResponse(jsonable_encoder(out), status_code=200 if out["replayed"] else 201)


@router.get("/buildings/{building_id}", summary="A building with its inspection history", responses=_NOT_FOUND)
def get_building(building_id: BuildingId, principal: Viewer, session: SessionDep) -> Any:
    """The building (landlord data masked below dispatcher), its risk level and next inspection
    date, its inspections newest first (inspectors, each item's result) and its hazards."""
    out = mask_record(buildings.building_detail(session, building_id, principal.scope), principal.role)
    if not role_sees_personal_data(principal.role):
        for inspection in out["inspections"]:
            for person in inspection["inspectors"]:
                person["name"] = mask_name(person.get("name"))
    return out


@router.get("/checklists", summary="Checklists and their versions")
def list_checklists(principal: Viewer, session: SessionDep) -> Any:
    return checklists.list_checklists(session)


@router.get("/checklists/{kind}/{version}", summary="One checklist version with its items", responses=_NOT_FOUND)
def get_checklist(
    kind: Annotated[str, Path(description=", ".join(CHECKLIST_KINDS))],
    version: Annotated[int, Path(ge=1, le=100_000)],
    principal: Viewer,
    session: SessionDep,
) -> Any:
    found = checklists.find(session, kind, version) if kind in CHECKLIST_KINDS else None
    if found is None:
        raise NotFound("checklist", f"{kind} v{version}")
    return found


@router.post("/checklists/{kind}", status_code=201, summary="A new version of a checklist kind", responses=_VALIDATION)
def post_checklist(
    kind: Annotated[str, Path(max_length=24, description=", ".join(CHECKLIST_KINDS))],
    body: ChecklistIn,
    principal: Planner,
    session: SessionDep,
) -> Any:
    """The next version of `kind` with these items; earlier versions and their inspections stay as they are."""
    items = [i.model_dump() for i in body.items]
    return checklists.create_version(session, kind, body.name, items, principal.name)


@router.get("/risk-intervals", summary="Days between inspections per risk level")
def get_intervals(principal: Viewer, session: SessionDep) -> Any:
    return buildings.intervals(session)


@router.put("/risk-intervals/{risk_level}", summary="Set the days between inspections of a risk level")
def put_interval(
    risk_level: Annotated[str, Path(description=", ".join(RISK_LEVELS))],
    body: RiskIntervalIn,
    principal: Admin,
    session: SessionDep,
) -> Any:
    buildings.set_interval(session, risk_level, body.days)
    return buildings.intervals(session)


@router.get(
    "/inspections/buildings.geojson",
    response_class=GeoJSONResponse,
    responses=GEOJSON_OK,
    summary="Map layer: rental buildings by their latest inspection's risk, its age, or whether one is due",
)
def get_inspection_layer(
    session: SessionDep,
    settings: SettingsDep,
    principal: Viewer,
    by: str = Query("risk", pattern="^(risk|age|due)$", description="risk, age (days since) or due"),
    grid: str | None = Query(None, max_length=32, description="only this grid's buildings"),
) -> Response:
    """Each rental building inside the key's scope with its class (`cls`): by `risk` high, medium,
    low or none (never inspected); by `age` under 30 days, 30-90, 90-180, over 180 or never; by
    `due` inspected within the interval of its risk level, overdue, or never. `counts` per class."""
    crs = _display_crs(settings)
    return _geojson(lambda: maplayers.building_points(session, by, principal.scope, crs, grid=grid))
