"""GET /grids/{code} and GET /beats/{code}: one grid or police beat, with who serves it and what
overlaps it (网格+警格 pairing)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from api.auth import Viewer
from api.deps import SessionDep
from api.schemas.lookup import BeatOut, GridOut
from api.timeparams import as_of_param
from gis.spatial.lookup import LookupService
from gis.spatial.units import UnknownUnitError, beat_details, grid_details

router = APIRouter(tags=["lookup"])

AsOf = Annotated[
    dt.datetime | None,
    Depends(as_of_param("the boundaries in force at this date (end of that day) or date-time; default now")),
]


def _generation(request: Request, session: SessionDep, at: dt.datetime | None) -> int | None:
    service: LookupService | None = getattr(request.app.state, "lookup", None)
    if service is None:  # the lookup router is always installed; this keeps the module usable alone
        service = LookupService()
    return service.generation_at(session, at)


@router.get(
    "/grids/{code}",
    response_model=GridOut,
    summary="A grid (网格): hierarchy, households, team, micro-grids, overlapping beats, incidents",
    description="The team (`staff`) is every posting in force today to the grid, its village (chief grid "
    "leader, community police, liaison cadres), the overlapping beats (beat officers) and their stations, "
    "each with the layer and code it is posted to; micro-grids list their leaders. "
    "Beats overlapping the grid come with the shared area in m² and in % of each side "
    "(measured in EPSG:4549). Incident counts are current: open (not closed/rejected), pending "
    "(reported, accepted, dispatched, in progress), overdue (pending past the deadline), escalated (open, "
    "above the grid), and reported in the last 30 days. Staff names and phones are masked for roles below "
    "dispatcher. 404 names an unknown code.",
    responses={404: {"description": "no grid with that code in the generation asked for"}},
)
def get_grid(
    request: Request,
    session: SessionDep,
    caller: Viewer,
    code: Annotated[str, Path(description="grid code", examples=["330421001001001"])],
    as_of: AsOf = None,
) -> Any:
    generation = _generation(request, session, as_of)
    try:
        if not caller.scope.contains(code):  # outside the caller's scope: as if it did not exist
            raise UnknownUnitError("grid", code, generation)
        return grid_details(session, code, generation, caller.role)
    except UnknownUnitError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get(
    "/beats/{code}",
    response_model=BeatOut,
    summary="A police beat (警格): station, overlapping grids and their auxiliary police",
    description="The grids the beat overlaps, with the shared area in m² and in % of each side "
    "(EPSG:4549), each with its auxiliary police (网格辅警): the 网格+警格 pairing. 404 names an unknown code.",
    responses={404: {"description": "no beat with that code in the generation asked for"}},
)
def get_beat(
    request: Request,
    session: SessionDep,
    caller: Viewer,
    code: Annotated[str, Path(description="beat code", examples=["330421P0101"])],
    as_of: AsOf = None,
) -> Any:
    generation = _generation(request, session, as_of)
    try:
        # A beat is in scope for the whole county and for scopes naming it or its station (police
        # codes nest; an administrative scope holds no beat: beats cross town lines).
        if not caller.scope.contains(code):
            raise UnknownUnitError("beat", code, generation)
        return beat_details(session, code, generation, caller.role)
    except UnknownUnitError as exc:
        raise HTTPException(404, str(exc)) from None
