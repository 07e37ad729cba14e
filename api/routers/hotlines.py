"""The 12345 and 110 hotline adapters: /hotlines/{code}.

``POST /hotlines/{code}/incidents`` takes a ticket in the hotline's own field names (gis.hotlines.inbound);
a resend of the same ticket number answers 200 with the first incident. The rest is admin
configuration: the callback URL and secret of the status callbacks, the category table, and the
log of the callbacks sent."""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response

from api.auth import Admin, Reporter, Viewer
from api.deps import SessionDep
from api.schemas.incidents import Incident
from api.schemas.outbound import CategoryIn, CategoryOut, DeliveryPage, HotlineIn, HotlineOut
from gis.core.privacy import mask_record
from gis.hotlines import config
from gis.hotlines.inbound import FIELDS, HotlineInputError, HotlineOff, take_ticket
from gis.incidents.scoped import OutsideScope
from gis.outbound.webhooks import WebhookInputError, delivery_log
from gis.people.keys import Principal

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "the key's role or scope does not allow it, or the hotline is switched off"},
    404: {"description": "no such hotline (12345, 110) or category"},
    422: {"description": "a field is wrong; `detail[].loc` names it (the hotline's own name for a ticket)"},
}
router = APIRouter(prefix="/hotlines", tags=["hotlines"], responses=_ERRORS)
HotlineCode = Path(max_length=8, description="12345 or 110")
TheirCode = Path(max_length=32, description="the hotline's category code")


def _unprocessable(field: str, value: object, reason: str, where: str = "body") -> NoReturn:
    shown = value if isinstance(value, str | int | float | bool | None) else str(value)
    raise HTTPException(422, [{"type": "value_error", "loc": [where, field], "msg": reason, "input": shown}])


def _county_admin(caller: Principal) -> None:
    """A hotline serves the whole county: only a whole-county admin changes its settings."""
    if not caller.scope.whole:
        raise HTTPException(403, f"a hotline's settings are county-wide; this key is limited to {caller.scope.label()}")


def _known(code: str) -> str:
    try:
        return config.check_code(code)
    except config.HotlineNotFound as exc:
        raise HTTPException(404, str(exc)) from None


_TICKET_DOC = "; ".join(f"{code}: " + ", ".join(f"`{theirs}`" for theirs in fields) for code, fields in FIELDS.items())


@router.post(
    "/{code}/incidents",
    status_code=201,
    response_model=Incident,
    summary="Take in a hotline ticket",
    responses={200: {"description": "a resend: the incident first made of this ticket"}},
)
def post_ticket(
    request: Request,
    session: SessionDep,
    caller: Reporter,
    response: Response,
    code: str = HotlineCode,
    ticket: dict[str, Any] = Body(description=f"the ticket in the hotline's field names ({_TICKET_DOC})"),
) -> Any:
    """The ticket becomes an incident of source `hotline_<code>` whose `external_id` is the ticket
    number; its category is translated by the hotline's category table. A 422 names the hotline's
    own field. Status changes of the incident go back to the hotline's callback URL."""
    _known(code)
    try:
        incident, created = take_ticket(session, code, ticket, caller.name, caller.scope, request.app.state.settings)
    except HotlineInputError as exc:
        _unprocessable(exc.field, exc.value, exc.reason)
    except (HotlineOff, OutsideScope) as exc:
        raise HTTPException(403, str(exc)) from None
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/incidents/{incident['id']}"
    return mask_record(incident, caller.role)


@router.get("/{code}", response_model=HotlineOut, summary="A hotline's settings")
def get_system(session: SessionDep, caller: Admin, code: str = HotlineCode) -> Any:
    _known(code)
    return config.get_system(session, code)


@router.put("/{code}", response_model=HotlineOut, summary="Set a hotline's callback URL, secret, on/off")
def put_system(session: SessionDep, caller: Admin, body: HotlineIn, code: str = HotlineCode) -> Any:
    """Fields left out stay; `callback_url: null` stops the callbacks. A secret made for a new
    callback URL is shown in this answer only."""
    _known(code)
    _county_admin(caller)
    try:
        return config.set_system(session, caller.name, code, body.model_dump(exclude_unset=True))
    except WebhookInputError as exc:
        _unprocessable(exc.field, exc.value, exc.reason)


@router.get("/{code}/categories", response_model=list[CategoryOut], summary="A hotline's category table")
def get_categories(session: SessionDep, caller: Viewer, code: str = HotlineCode) -> Any:
    _known(code)
    return config.list_categories(session, code)


@router.put("/{code}/categories/{their_code}", response_model=CategoryOut, summary="Map a hotline category")
def put_category(
    session: SessionDep, caller: Admin, body: CategoryIn, code: str = HotlineCode, their_code: str = TheirCode
) -> Any:
    _known(code)
    _county_admin(caller)
    try:
        return config.put_category(session, caller.name, code, their_code, body.model_dump())
    except WebhookInputError as exc:
        _unprocessable(exc.field, exc.value, exc.reason, "path" if exc.field == "their_code" else "body")


@router.delete("/{code}/categories/{their_code}", status_code=204, summary="Remove a hotline category")
def delete_category(
    session: SessionDep, caller: Admin, code: str = HotlineCode, their_code: str = TheirCode
) -> Response:
    _known(code)
    _county_admin(caller)
    try:
        config.delete_category(session, caller.name, code, their_code)
    except config.HotlineNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


@router.get("/{code}/deliveries", response_model=DeliveryPage, summary="The log of a hotline's status callbacks")
def get_deliveries(
    session: SessionDep,
    caller: Admin,
    code: str = HotlineCode,
    status: str | None = Query(None, description="pending, delivered, failed or gave_up"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Any:
    _known(code)
    try:
        total, items = delivery_log(session, "hotline_code", code, status=status, limit=limit, offset=offset)
    except WebhookInputError as exc:
        _unprocessable(exc.field, exc.value, exc.reason, "query")
    return {"total": total, "limit": limit, "offset": offset, "items": items}
