"""The people in a boundary draft: the posting moves a publish would make, and the planner's
decisions about them (boundaries/postingplan.py). Included by api/routers/boundaries.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response

from api.auth import Planner, Viewer
from api.deps import SessionDep
from api.schemas.boundaries import PostingDecisionIn
from boundaries import drafts, postingplan
from gis.core.privacy import role_sees_personal_data

router = APIRouter(tags=["boundaries"])
PREFIX = "/boundaries/drafts/{draft_id}/postings"


def _fail(exc: Exception) -> HTTPException:
    if isinstance(exc, drafts.DraftNotFoundError):
        return HTTPException(404, str(exc))
    if isinstance(exc, drafts.DraftClosedError):
        return HTTPException(409, str(exc))
    return HTTPException(422, str(exc))


@router.get(PREFIX)
def posting_plan(draft_id: int, session: SessionDep, who: Viewer) -> dict[str, Any]:
    """Successors of the deleted, split and merged units and the postings that would move to them
    (names and phones masked below dispatcher); ``problems`` block publishing."""
    try:
        return postingplan.posting_plan(session, draft_id).to_dict(role_sees_personal_data(who.role))
    except ValueError as exc:
        raise _fail(exc) from None


@router.post(PREFIX, status_code=201, responses={409: {"description": "the draft is published or discarded"}})
def decide(draft_id: int, body: PostingDecisionIn, session: SessionDep, who: Planner) -> dict[str, Any]:
    """Override the proposal for one posting (move it elsewhere, or end it), or post a person to a
    unit of the draft from the publish day. A new decision about a posting replaces the old one."""
    try:
        return postingplan.decide(session, draft_id, actor=who.name, **body.model_dump())
    except ValueError as exc:
        raise _fail(exc) from None


@router.delete(f"{PREFIX}/{{entry_id}}", status_code=204, responses={409: {"description": "the draft is closed"}})
def withdraw(draft_id: int, entry_id: int, session: SessionDep, who: Planner) -> Response:
    """Withdraw a decision; the proposal applies again."""
    try:
        postingplan.withdraw(session, draft_id, entry_id, actor=who.name)
    except ValueError as exc:
        raise _fail(exc) from None
    return Response(status_code=204)
