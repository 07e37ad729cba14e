"""Reading incidents back: one incident with its history, and filtered pages of them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gis.incidents.filter import IncidentFilter
from gis.incidents.intake import COLUMNS, IncidentInputError, describe
from gis.incidents.totals import TotalCounter
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn


def history(conn: Conn, incident_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT id, at, actor, action, from_status, to_status, note FROM incident_events "
            "WHERE incident_id = :id ORDER BY id"
        ),
        {"id": incident_id},
    ).mappings()
    return [dict(r) for r in rows]


def get_incident(
    conn: Conn, incident_id: int, with_history: bool = True, scope: Scope = WHOLE_COUNTY
) -> dict[str, Any] | None:
    """One incident (None: no such id, or outside ``scope``, the caller's: the same answer)."""
    in_scope, params = scope.where("i")
    query = sa.text(f"SELECT {COLUMNS} FROM incidents i WHERE i.id = :id AND {in_scope}")  # noqa: S608
    row = conn.execute(query, {"id": incident_id, **params}).one_or_none()
    if row is None:
        return None
    out = describe(row.incident)
    if with_history:
        out["history"] = history(conn, incident_id)
    return out


# --- listing -----------------------------------------------------------------------------------


def list_incidents(
    conn: Conn, filters: IncidentFilter, limit: int = 50, offset: int = 0, totals: TotalCounter | None = None
) -> tuple[list[dict[str, Any]], int]:
    """One page of incidents (newest report first) and the total matching the filters (above
    ``gis.incidents.totals.EXACT_UP_TO`` matches, counted at most a few seconds ago by ``totals``
    when one is given, for callers that list again and again, like the API)."""
    if not 1 <= limit <= 1000:
        raise IncidentInputError("limit", f"{limit} is out of range [1, 1000]")
    if offset < 0:
        raise IncidentInputError("offset", f"{offset} must not be negative")
    where, params = filters.where("i")
    total = (totals or TotalCounter()).count(conn, f"incidents i WHERE {where}", params)
    # The page's ids first, then their JSON: when the rows come from an index that does not give
    # the order (an area's or a scope's), the sort would otherwise build the JSON of every match.
    rows = conn.execute(
        sa.text(
            f"WITH page AS (SELECT i.id, i.reported_at FROM incidents i WHERE {where} "  # noqa: S608
            "ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit OFFSET :offset) "
            f"SELECT {COLUMNS} FROM page JOIN incidents i ON i.id = page.id "
            "ORDER BY page.reported_at DESC, page.id DESC"
        ),
        {**params, "limit": limit, "offset": offset},
    )
    return [describe(r.incident) for r in rows], int(total)
