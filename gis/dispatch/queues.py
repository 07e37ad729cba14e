"""Queues: the open work (offered and accepted assignments) of a person or an organisation unit,
soonest deadline first: what ``GET /me/tasks`` and ``GET /org-units/{code}/queue`` list."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gis.spatial.areas import Conn

_QUEUE = """
    SELECT a.id AS assignment_id, a.kind, a.role, a.state, a.accept_by, a.offered_at, a.offered_by,
           a.accepted_at, a.person_id, ou.code AS org_unit, a.note,
           i.id AS incident_id, i.category, i.source, i.status, i.escalation_level, i.reported_at,
           i.deadline_at, i.grid_code, i.beat_code, i.address_text, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
    FROM incident_assignments a JOIN incidents i ON i.id = a.incident_id
    LEFT JOIN org_units ou ON ou.id = a.org_unit_id
    WHERE a.state IN ('offered', 'accepted') AND {who}
    ORDER BY a.state = 'accepted', coalesce(a.accept_by, i.deadline_at), a.id
    LIMIT :limit OFFSET :offset"""
_PERSON = sa.text(_QUEUE.format(who="a.person_id = :who"))
_UNIT = sa.text(_QUEUE.format(who="a.org_unit_id = :who"))


def _rows(conn: Conn, query: sa.TextClause, who: int, limit: int, offset: int) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query, {"who": who, "limit": limit, "offset": offset})]


def tasks(
    conn: Conn, person_id: int | None, org_unit_id: int | None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """The open work of a person and/or a unit (an account is of one or the other), offers first
    (by acceptance deadline), then accepted work (by the incident's deadline)."""
    out: list[dict[str, Any]] = []
    if person_id is not None:
        out += _rows(conn, _PERSON, person_id, limit, offset)
    if org_unit_id is not None:
        out += _rows(conn, _UNIT, org_unit_id, limit, offset)
    return out


def unit_queue(conn: Conn, org_unit_id: int, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    return _rows(conn, _UNIT, org_unit_id, limit, offset)
