"""Webhooks of organisation units: /org-units/{code}/webhooks and /webhooks/{id} (admin only).

Create, list, change and delete a unit's webhooks, read a webhook's delivery log, and send it a
test ping (queued like any delivery: its outcome shows in the log). A scoped admin key manages
the webhooks of units inside its scope; others answer 404 as if absent."""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi import APIRouter, HTTPException, Path, Query, Response

from api.auth import Admin
from api.deps import SessionDep
from api.schemas.outbound import DeliveryPage, PingOut, WebhookIn, WebhookOut, WebhookPatch
from gis.outbound import webhooks as hooks
from gis.people.keys import Principal
from gis.people.orgunits import get_org_unit
from gis.people.write import NotFoundError

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "the key is not an admin's"},
    404: {"description": "no such unit or webhook in the key's scope"},
    422: {"description": "a field is wrong; `detail[].loc` names it"},
}
router = APIRouter(tags=["webhooks"], responses=_ERRORS)
UnitCode = Path(max_length=32, description="the organisation unit's code")
WebhookId = Path(ge=1, le=2**63 - 1, description="webhook id")


def unprocessable(exc: hooks.WebhookInputError) -> NoReturn:
    value = exc.value if isinstance(exc.value, str | int | float | bool | None) else str(exc.value)
    raise HTTPException(422, [{"type": "value_error", "loc": ["body", exc.field], "msg": exc.reason, "input": value}])


def _unit_in_scope(session: SessionDep, caller: Principal, code: str) -> None:
    try:
        unit = get_org_unit(session, code)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    if not caller.scope.contains(unit["area_code"]):
        raise HTTPException(404, f"no organisation unit with code {code!r}")


def _hook_in_scope(session: SessionDep, caller: Principal, webhook_id: int) -> None:
    try:
        area = hooks.webhook_area(session, webhook_id)
    except hooks.WebhookNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    if not caller.scope.contains(area):
        raise HTTPException(404, f"no webhook {webhook_id}")


@router.get("/org-units/{code}/webhooks", response_model=list[WebhookOut], summary="A unit's webhooks")
def list_route(session: SessionDep, caller: Admin, code: str = UnitCode) -> Any:
    _unit_in_scope(session, caller, code)
    return [hooks.masked(h) for h in hooks.list_webhooks(session, code)]


@router.post(
    "/org-units/{code}/webhooks", response_model=WebhookOut, status_code=201, summary="Add a webhook to a unit"
)
def create_route(session: SessionDep, caller: Admin, body: WebhookIn, code: str = UnitCode) -> Any:
    """The webhook receives the events of incidents inside the unit's area, signed with its secret
    (shown in full in this answer only)."""
    _unit_in_scope(session, caller, code)
    try:
        return hooks.create_webhook(session, caller.name, code, body.model_dump())
    except hooks.WebhookInputError as exc:
        unprocessable(exc)


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, summary="A webhook")
def get_route(session: SessionDep, caller: Admin, webhook_id: int = WebhookId) -> Any:
    _hook_in_scope(session, caller, webhook_id)
    return hooks.masked(hooks.get_webhook(session, webhook_id))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut, summary="Change a webhook")
def patch_route(session: SessionDep, caller: Admin, body: WebhookPatch, webhook_id: int = WebhookId) -> Any:
    _hook_in_scope(session, caller, webhook_id)
    changes = body.model_dump(exclude_unset=True)
    for field in ("url", "events", "active"):
        if field in changes and changes[field] is None:
            unprocessable(hooks.WebhookInputError(field, None, "may not be null"))
    try:
        hook = hooks.update_webhook(session, caller.name, webhook_id, changes)
    except hooks.WebhookInputError as exc:
        unprocessable(exc)
    return hook if changes.get("secret") else hooks.masked(hook)


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook and its delivery log")
def delete_route(session: SessionDep, caller: Admin, webhook_id: int = WebhookId) -> Response:
    _hook_in_scope(session, caller, webhook_id)
    hooks.delete_webhook(session, caller.name, webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage, summary="A webhook's delivery log")
def deliveries_route(
    session: SessionDep,
    caller: Admin,
    webhook_id: int = WebhookId,
    status: str | None = Query(None, description="pending, delivered, failed or gave_up"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Any:
    """Every delivery to the webhook, newest first: the event, the payload sent, the attempts and
    the last answer (HTTP status or error)."""
    _hook_in_scope(session, caller, webhook_id)
    try:
        total, items = hooks.list_deliveries(session, webhook_id, status=status, limit=limit, offset=offset)
    except hooks.WebhookInputError as exc:
        raise HTTPException(
            422, [{"type": "value_error", "loc": ["query", exc.field], "msg": exc.reason, "input": exc.value}]
        ) from None
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.post("/webhooks/{webhook_id}/test", response_model=PingOut, status_code=202, summary="Send a test ping")
def ping_route(session: SessionDep, caller: Admin, webhook_id: int = WebhookId) -> Any:
    """Queue a signed `webhook.ping` to the webhook; its outcome appears in the delivery log."""
    _hook_in_scope(session, caller, webhook_id)
    return hooks.ping(session, caller.name, webhook_id)
