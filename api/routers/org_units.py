"""/org-units: county and town centres, village stations, police stations and departments, the
area each is responsible for, and their members (postings naming the unit).

A scoped key sees the units whose area is inside its scope (others: 404) and, of their members,
the postings to areas inside its scope."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from api.auth import Planner, Viewer
from api.deps import SessionDep
from api.routers.staff import area_in_scope, not_found, unprocessable
from api.schemas.people import Kind, OrgUnitIn, OrgUnitOut, PostingPage
from api.timeparams import day_param
from gis.core.privacy import role_sees_personal_data
from gis.people.orgunits import create_org_unit, get_org_unit, list_org_units
from gis.people.roster import list_postings, mask_posting
from gis.people.rules import PeopleInputError
from gis.people.write import NotFoundError

router = APIRouter(tags=["staff"])


@router.get("/org-units", response_model=list[OrgUnitOut], summary="Organisation units, with members today")
def get_org_units(
    session: SessionDep,
    caller: Viewer,
    kind: Kind | None = Query(
        None, description="county_centre, town_centre, village_station, police_station, department"
    ),
    area_code: str | None = Query(None, max_length=32, description="units responsible for this area"),
    is_key: bool | None = Query(None, description="key villages' stations only (true) or the others (false)"),
) -> Any:
    return list_org_units(session, kind=kind, area_code=area_code, is_key=is_key, scope=caller.scope)


@router.post("/org-units", response_model=OrgUnitOut, status_code=201, summary="Add an organisation unit")
def post_org_unit(session: SessionDep, caller: Planner, body: OrgUnitIn) -> Any:
    # A scoped key makes units for areas of its own (a county-wide unit is beyond any smaller scope).
    area_in_scope(caller, body.area_code)
    try:
        unit = create_org_unit(session, caller.name, body.model_dump())
    except PeopleInputError as exc:
        unprocessable(exc)
    return {**unit, "members": 0}


@router.get("/org-units/{code}/members", response_model=PostingPage, summary="The postings naming a unit")
def get_members(
    session: SessionDep,
    caller: Viewer,
    active_on: Annotated[dt.date | None, Depends(day_param("active_on", "only members in force that day"))],
    code: str = Path(max_length=32),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> Any:
    try:
        unit = get_org_unit(session, code)
    except NotFoundError as exc:
        not_found(exc)
    if not caller.scope.contains(unit["area_code"]):
        not_found(NotFoundError(f"no organisation unit with code {code!r}"))
    total, rows = list_postings(
        session, org_unit=code, active_on=active_on, limit=limit, offset=offset, scope=caller.scope
    )
    sees = role_sees_personal_data(caller.role)
    return {"total": total, "limit": limit, "offset": offset, "items": [mask_posting(r, sees) for r in rows]}
