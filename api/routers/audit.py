"""The audit log, for administrators."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query

from api.auth import Admin
from api.deps import SessionDep
from api.schemas.audit import AuditEntry, AuditPage
from gis.core import audit

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=AuditPage, summary="Search the audit log (admin)")
def get_audit(
    session: SessionDep,
    _: Admin,
    actor: str | None = Query(None, max_length=100, description="key name or user that acted"),
    action: str | None = Query(
        None, max_length=64, description="exact action, or a prefix ending in '.', e.g. 'incident.'"
    ),
    target: str | None = Query(None, max_length=200),
    since: dt.datetime | None = Query(None, description="from this time (inclusive)"),
    until: dt.datetime | None = Query(None, description="before this time"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> AuditPage:
    total, rows = audit.search(
        session, actor=actor, action=action, target=target, since=since, until=until, limit=limit, offset=offset
    )
    return AuditPage(total=total, limit=limit, offset=offset, items=[AuditEntry(**r) for r in rows])
