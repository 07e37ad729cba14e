"""The audit log, for administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Admin
from api.deps import SessionDep
from api.schemas.audit import AuditEntry, AuditPage
from api.timeparams import TimeWindow, time_window
from gis.core import audit
from gis.people.keys import account_names_within

router = APIRouter(tags=["audit"])

# ``since``/``until`` were this endpoint's names for the window; kept as aliases for one release.
AuditWindow = Annotated[
    TimeWindow, Depends(time_window(what="entries", start_aliases=("since",), end_aliases=("until",)))
]


@router.get("/audit", response_model=AuditPage, summary="Search the audit log (admin)")
def get_audit(
    session: SessionDep,
    principal: Admin,
    window: AuditWindow,
    actor: str | None = Query(None, max_length=100, description="key name or user that acted"),
    action: str | None = Query(
        None, max_length=64, description="exact action, or a prefix ending in '.', e.g. 'incident.'"
    ),
    target: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> AuditPage:
    """A scoped administrator sees the entries of the accounts inside their scope (whose scope
    their own covers), not those of county-wide accounts, the CLI or the system."""
    start, end = window
    actors = None if principal.scope.whole else account_names_within(session, principal.scope)
    total, rows = audit.search(
        session,
        actor=actor,
        action=action,
        target=target,
        start=start,
        end=end,
        limit=limit,
        offset=offset,
        actors=actors,
    )
    return AuditPage(total=total, limit=limit, offset=offset, items=[AuditEntry(**r) for r in rows])
