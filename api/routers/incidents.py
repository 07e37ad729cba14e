"""Incidents: live intake, the closed-loop workflow, listing. The rules live in gis.incidents.intake and
gis.incidents.workflow; this module turns their errors into 404/409/422 and masks personal data by role.

Intake is the hot path (hundreds of reports a second), so ``POST /incidents`` differs from the
other endpoints in two ways: it stores the incident in one atomic statement on an autocommit
connection (no BEGIN/COMMIT round trips), and it answers with pre-serialised JSON (the
``Incident`` schema documents it; the dict already has that shape).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import Dispatcher, Reporter, Viewer
from api.deps import SessionDep, autocommit_connection, request_session
from api.params import IncidentFilterDep
from api.schemas.incidents import Conflict, EscalateIn, Incident, IncidentIn, IncidentPage, TransitionIn
from gis.core.privacy import mask_record
from gis.incidents.filter import IncidentFilter
from gis.incidents.intake import IncidentInputError, create_incident
from gis.incidents.query import get_incident, list_incidents
from gis.incidents.scoped import OutsideScope, create_incident_in_scope
from gis.incidents.stats import StatsInputError
from gis.incidents.workflow import (
    IllegalTransition,
    IncidentNotFound,
    UnknownActionError,
    escalate,
    transition,
)

router = APIRouter(prefix="/incidents", tags=["incidents"])

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="incident id")]

_VALIDATION: dict[int | str, dict[str, Any]] = {
    422: {"description": "a field is missing or wrong; `detail[].loc` names it and `msg` says why"}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such incident"}}


def _location(request: Request, field: str) -> list[str]:
    if field == "idempotency_key":
        return ["header", "Idempotency-Key"]
    return ["query" if request.method == "GET" else "body", field]


async def _input_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IncidentInputError | StatsInputError | UnknownActionError)
    field = getattr(exc, "field", "action")
    item: dict[str, Any] = {
        "loc": _location(request, field),
        "msg": getattr(exc, "reason", str(exc)),
        "type": "value_error",
    }
    item.update(getattr(exc, "extra", {}))
    return JSONResponse({"detail": [item]}, status_code=422)


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IllegalTransition)
    body = {"detail": str(exc), "current_status": exc.current, "requested": exc.requested, "allowed": list(exc.allowed)}
    return JSONResponse(body, status_code=409)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


# The domain's errors as answers: 422 naming the field, 409 with the allowed moves, 404.
EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
    IncidentInputError: _input_error,
    StatsInputError: _input_error,
    UnknownActionError: _input_error,
    IllegalTransition: _conflict,
    IncidentNotFound: _not_found,
}


def _out(incident: dict[str, Any], role: str) -> dict[str, Any]:
    return mask_record(incident, role)


@router.post(
    "",
    status_code=201,
    response_model=Incident,
    summary="Report an incident (事件上报)",
    responses={
        200: {"model": Incident, "description": "replay: the incident first created with this key"},
        403: {"description": "the incident falls outside the key's scope (nothing is stored)"},
        **_VALIDATION,
    },
)
def post_incident(
    body: IncidentIn,
    principal: Reporter,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=128,
            description="a client-chosen key; a retry with the same key returns the first result (200)",
        ),
    ] = None,
) -> Response:
    """Store an incident located by coordinate (`lon`, `lat`, `crs`) or by `address`. It is assigned
    to its town, village, grid, micro-grid, police station and beat, and gets the deadline of its
    category. The same `(source, external_id)` or `Idempotency-Key` again returns the first
    incident with 200 instead of 201. A report of the same category near an open one in time and
    space is stored and flagged with `possible_duplicate_of`. A scoped key files only inside its
    scope: an incident that falls elsewhere answers 403 naming the unit, and nothing is stored."""
    if principal.scope.whole:
        with autocommit_connection(request) as conn:
            incident, created = create_incident(
                conn, body.model_dump(), principal.name, idempotency_key, request.app.state.settings
            )
    else:
        try:
            with request_session(request) as session:
                incident, created = create_incident_in_scope(
                    session,
                    principal.scope,
                    body.model_dump(),
                    principal.name,
                    idempotency_key,
                    request.app.state.settings,
                )
        except OutsideScope as exc:
            raise HTTPException(403, str(exc)) from None
    return Response(
        orjson.dumps(_out(incident, principal.role)),
        status_code=201 if created else 200,
        media_type="application/json",
        headers={"Location": f"/incidents/{incident['id']}"},
    )


@router.get("", response_model=IncidentPage, summary="List incidents with filters", responses=_VALIDATION)
def list_route(
    request: Request,
    principal: Viewer,
    session: SessionDep,
    filters: IncidentFilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Incidents, newest report first. Area filters take codes of any level (town, village, grid,
    micro-grid) and of the police overlay (station, beat); repeat a parameter (or separate with
    commas) for several values. `open`, `pending`, `overdue` and `escalated` mean what they mean
    in every other output: open = not closed/rejected; pending = reported, accepted, dispatched or
    in progress; overdue = pending and past the deadline; escalated = above the grid level."""
    items, total = list_incidents(session, filters, limit, offset, request.app.state.totals)
    return {"total": total, "limit": limit, "offset": offset, "items": [_out(i, principal.role) for i in items]}


@router.get("/outside", response_model=IncidentPage, summary="Open incidents outside the jurisdiction")
def outside(
    request: Request,
    principal: Viewer,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Open incidents that lie beyond the snap tolerance outside every grid (`outside_jurisdiction`):
    stored, never dropped, and listed here for a person to forward or correct."""
    # Outside every grid is outside every scope but the whole county's: a scoped key lists none.
    filters = IncidentFilter(assign_status=("outside_jurisdiction",), open_only=True, scope=principal.scope)
    items, total = list_incidents(session, filters, limit, offset, request.app.state.totals)
    return {"total": total, "limit": limit, "offset": offset, "items": [_out(i, principal.role) for i in items]}


@router.get("/{incident_id}", response_model=Incident, summary="One incident with its history", responses=_NOT_FOUND)
def get_route(incident_id: IncidentId, principal: Viewer, session: SessionDep) -> dict[str, Any]:
    incident = get_incident(session, incident_id, scope=principal.scope)
    if incident is None:
        raise IncidentNotFound(incident_id)
    return _out(incident, principal.role)


@router.post(
    "/{incident_id}/transitions",
    response_model=Incident,
    summary="Move an incident along the closed loop",
    responses={
        409: {"model": Conflict, "description": "not allowed from the current status"},
        **_NOT_FOUND,
        **_VALIDATION,
    },
)
def transition_route(
    incident_id: IncidentId, body: TransitionIn, principal: Dispatcher, session: SessionDep
) -> dict[str, Any]:
    """上报 reported → 立案 accepted (or 不予立案 rejected) → 派遣 dispatched → 处置 in_progress →
    处置完成 handled → 核查 verified → 结案 closed; a failed check sends a handled incident back to
    in_progress. Anything else answers 409 with the allowed next statuses."""
    done = transition(session, incident_id, body.action, principal.name, body.note, scope=principal.scope)
    return _out(done, principal.role)


@router.post(
    "/{incident_id}/escalate",
    response_model=Incident,
    summary="Escalate an incident one level (提级)",
    responses={409: {"model": Conflict, "description": "ended, handled, or already at the county"}, **_NOT_FOUND},
)
def escalate_route(
    incident_id: IncidentId, principal: Dispatcher, session: SessionDep, body: EscalateIn | None = None
) -> dict[str, Any]:
    """grid → village → town command centre (镇街综治中心) → county centre (县社会治理中心); the new
    level's deadline starts now. Overdue incidents are escalated the same way automatically."""
    note = body.note if body else None
    return _out(escalate(session, incident_id, principal.name, note, scope=principal.scope), principal.role)
