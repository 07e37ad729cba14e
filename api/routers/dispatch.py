"""Dispatch: who holds an incident. Thin: the rules, the checks and the SQL are gis.dispatch.

* the caller's work: ``GET /me/tasks`` (offers and accepted work of the key's person or unit);
  a unit's: ``GET /org-units/{code}/queue``;
* a dispatcher's steps: ``POST /incidents/{id}/dispatch`` (by hand, or again by the routing
  rules), ``/summon`` (吹哨), ``/supervise`` (督办), ``/remind`` (催办);
* the holder's: ``/accept``, ``/decline`` (a reason is required), ``/arrive`` (the position);
* the routing rules (data, admins edit them): ``/routing-rules``.

An incident outside the caller's scope answers 404 as a missing one; a holder outside it, or an
assignment that is not the caller's, 403; a step the state forbids (accepting twice), 409; bad
input, 422 naming the field (``loc``) and the problem.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import Admin, Dispatcher, Reporter, Viewer
from api.deps import SessionDep
from api.schemas.dispatch import (
    AcceptIn,
    ArriveIn,
    Assignment,
    DeclineIn,
    DispatchIn,
    Reminded,
    RemindIn,
    ReplyIn,
    RoutingRule,
    RoutingRuleIn,
    SummonIn,
    SuperviseIn,
    Supervision,
    Task,
)
from gis.core import timeparse
from gis.core.vocab import ROLE_RANK
from gis.dispatch import assignments, manual, orders, queues
from gis.dispatch import rules as routing_rules
from gis.dispatch.assignments import Holder, IncidentGone
from gis.dispatch.errors import DispatchConflict, DispatchInputError, NotPermitted
from gis.dispatch.routing import route
from gis.people.keys import Principal
from gis.people.orgunits import get_org_unit
from gis.people.write import NotFoundError

router = APIRouter(tags=["dispatch"])
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="incident id")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "not your assignment, or a holder outside your scope"},
    404: {"description": "no such incident (or outside your scope)"},
    409: {"description": "the step does not fit the assignment's or the incident's state"},
    422: {"description": "a field is missing or wrong; `detail[].loc` names it and `msg` says why"},
}


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=403)


async def _gone(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


# DispatchInputError is an IncidentInputError: api.routers.incidents answers it (422 naming the field).
EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
    DispatchConflict: _conflict,
    NotPermitted: _forbidden,
    IncidentGone: _gone,
}


def _holder(principal: Principal) -> Holder:
    return Holder(principal.name, principal.person_id, principal.org_unit_id)


def _time(field: str, value: str) -> Any:
    try:
        return timeparse.parse_time(value, bound="instant", field=field)
    except timeparse.TimeValueError as exc:
        raise DispatchInputError(field, exc.message.removeprefix(f"{field}: ")) from None


@router.get("/me/tasks", response_model=list[Task], summary="My offers and accepted work, soonest deadline first")
def my_tasks(
    principal: Viewer,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    """The assignments held by the person or unit the caller's account is of: offers (by their
    acceptance deadline) and accepted work. An account of neither holds none."""
    return queues.tasks(session, principal.person_id, principal.org_unit_id, limit, offset)


@router.get("/org-units/{code}/queue", response_model=list[Task], summary="A unit's offers and accepted work")
def unit_queue(
    principal: Viewer,
    session: SessionDep,
    code: Annotated[str, Path(max_length=32)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    try:
        unit = get_org_unit(session, code)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    if not principal.scope.contains(unit["area_code"]):
        raise HTTPException(404, f"no organisation unit with code {code!r} in your scope")
    return queues.unit_queue(session, int(unit["id"]), limit, offset)


@router.get(
    "/incidents/{incident_id}/assignments", response_model=list[Assignment], summary="Who holds an incident",
    responses=_ERRORS,
)  # fmt: skip
def get_assignments(incident_id: IncidentId, principal: Viewer, session: SessionDep) -> Any:
    assignments.lock_incident(session, incident_id, principal.scope)  # 404 outside the scope
    return assignments.list_assignments(session, incident_id)


@router.post(
    "/incidents/{incident_id}/dispatch", response_model=list[Assignment], summary="Dispatch (派遣) or re-dispatch",
    responses=_ERRORS,
)  # fmt: skip
def post_dispatch(
    incident_id: IncidentId,
    principal: Dispatcher,
    session: SessionDep,
    request: Request,
    body: DispatchIn | None = None,
) -> Any:
    """Offer the incident to a person (`person_id`) or an organisation unit (`org_unit`), as its
    lead (replacing the active lead) or a co-handler; the holder must serve the incident's area
    and lie inside the caller's scope. A lead offered to an accepted (立案) incident moves it to
    `dispatched`. Without a holder, the routing rules are applied again (the offers they make)."""
    settings = request.app.state.settings
    if body is None or (body.person_id is None and body.org_unit is None):
        assignments.lock_incident(session, incident_id, principal.scope)
        made = route(session, incident_id, principal.name, settings=settings)
        return [assignments.get_assignment(session, int(m["id"])) for m in made]
    one = manual.dispatch(
        session, incident_id, principal.name, person_id=body.person_id, org_unit=body.org_unit, role=body.role,
        note=body.note, scope=principal.scope, settings=settings,
    )  # fmt: skip
    return [one]


@router.post(
    "/incidents/{incident_id}/accept", response_model=Assignment, summary="Accept my offer (接单)", responses=_ERRORS
)
def post_accept(incident_id: IncidentId, principal: Reporter, session: SessionDep, body: AcceptIn | None = None) -> Any:
    aid = body.assignment_id if body else None
    return assignments.accept(session, incident_id, _holder(principal), assignment_id=aid, scope=principal.scope)


@router.post(
    "/incidents/{incident_id}/decline", response_model=Assignment, summary="Decline my offer, saying why",
    responses=_ERRORS,
)  # fmt: skip
def post_decline(incident_id: IncidentId, principal: Reporter, session: SessionDep, body: DeclineIn) -> Any:
    return assignments.decline(
        session, incident_id, _holder(principal), body.reason, assignment_id=body.assignment_id, scope=principal.scope
    )


@router.post(
    "/incidents/{incident_id}/arrive", response_model=Assignment, summary="On the scene (到场)", responses=_ERRORS
)
def post_arrive(incident_id: IncidentId, principal: Reporter, session: SessionDep, body: ArriveIn) -> Any:
    """The holder of an accepted assignment is on the scene at (`lon`, `lat`), WGS-84; the first
    arrival sets the incident's `on_scene_at`."""
    return assignments.arrive(session, incident_id, _holder(principal), body.lon, body.lat, scope=principal.scope)


@router.post(
    "/incidents/{incident_id}/summon", response_model=list[Assignment], summary="Summon departments (吹哨报到)",
    responses=_ERRORS,
)  # fmt: skip
def post_summon(incident_id: IncidentId, principal: Dispatcher, session: SessionDep, body: SummonIn) -> Any:
    """Each unit named gets a summons; it reports in (`/accept`) by `report_by`."""
    report_by = _time("report_by", body.report_by)
    return orders.summon(
        session, incident_id, principal.name, body.org_units, report_by, note=body.note, scope=principal.scope
    )


@router.post(
    "/incidents/{incident_id}/supervise", response_model=Supervision, summary="Supervision order (督办)",
    responses=_ERRORS,
)  # fmt: skip
def post_supervise(incident_id: IncidentId, principal: Dispatcher, session: SessionDep, body: SuperviseIn) -> Any:
    due_at = _time("due_at", body.due_at)
    return orders.supervise(session, incident_id, principal.name, body.instruction, due_at, scope=principal.scope)


@router.get(
    "/incidents/{incident_id}/supervisions", response_model=list[Supervision], summary="Supervision orders and replies",
    responses=_ERRORS,
)  # fmt: skip
def get_supervisions(incident_id: IncidentId, principal: Viewer, session: SessionDep) -> Any:
    assignments.lock_incident(session, incident_id, principal.scope)  # 404 outside the scope
    return orders.list_supervisions(session, incident_id)


@router.post(
    "/incidents/{incident_id}/supervisions/{supervision_id}/reply", response_model=Supervision,
    summary="Answer a supervision order (督办回复)", responses=_ERRORS,
)  # fmt: skip
def post_reply(
    incident_id: IncidentId,
    supervision_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    principal: Reporter,
    session: SessionDep,
    body: ReplyIn,
) -> Any:
    """A holder of the incident (or a dispatcher) answers; an order is answered once."""
    return orders.reply(
        session, incident_id, supervision_id, _holder(principal), body.reply,
        may_answer_any=ROLE_RANK[principal.role] >= ROLE_RANK["dispatcher"], scope=principal.scope,
    )  # fmt: skip


@router.post(
    "/incidents/{incident_id}/remind", response_model=Reminded, summary="Remind the holders (催办)", responses=_ERRORS
)
def post_remind(
    incident_id: IncidentId, principal: Dispatcher, session: SessionDep, body: RemindIn | None = None
) -> Any:
    return orders.remind(session, incident_id, principal.name, body.note if body else None, scope=principal.scope)


@router.get("/routing-rules", response_model=list[RoutingRule], summary="The routing rules, in the order they apply")
def get_rules(principal: Viewer, session: SessionDep) -> Any:
    return routing_rules.list_rules(session)


@router.post("/routing-rules", response_model=RoutingRule, status_code=201, summary="Add a routing rule")
def post_rule(principal: Admin, session: SessionDep, body: RoutingRuleIn) -> Any:
    return routing_rules.create_rule(session, principal.name, body.model_dump())


@router.post("/routing-rules/{rule_id}/disable", response_model=RoutingRule, summary="Switch a routing rule off")
def disable_rule(principal: Admin, session: SessionDep, rule_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Any:
    rule = routing_rules.set_enabled(session, principal.name, rule_id, False)
    if rule is None:
        raise HTTPException(404, f"no routing rule with id {rule_id}")
    return rule
