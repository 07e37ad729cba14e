"""Hazards and incidents, linked both ways (``hazard_incidents``): a hazard can raise an incident
(a fire risk that needs the command centre: ``raise_incident``), and an incident can reveal a
hazard (``POST /hazards`` with ``incident_id``). The link row says which came first (``origin``);
``GET /hazards/{id}`` lists a hazard's incidents and ``GET /hazards?incident_id=`` an incident's
hazards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.settings import Settings
from gis.fieldwork import hazards
from gis.fieldwork.common import FieldworkInputError, text
from gis.incidents import rules
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

# The incident category a hazard category raises by default (the rest: rental housing management).
INCIDENT_CATEGORY = {
    "blocked_escape": "fire",
    "fire_equipment": "fire",
    "private_wiring": "fire",
    "gas": "fire",
    "ebike_fly_line": "ebike_charging",
    "illegal_ebike_parking": "ebike_charging",
}
DEFAULT_INCIDENT_CATEGORY = "rental_management"
INCIDENT_SOURCE = "grid_patrol"


class OutsideScope(PermissionError):
    """A new row would lie outside the caller's scope (403; nothing is stored)."""


def locked_incident(conn: Conn, incident_id: Any, scope: Scope = WHOLE_COUNTY) -> int:
    if isinstance(incident_id, bool) or not isinstance(incident_id, int) or not 1 <= incident_id < 2**63:
        raise FieldworkInputError("incident_id", f"{incident_id!r} is not an incident id")
    in_scope, params = scope.where("i")
    found = conn.execute(
        sa.text(f"SELECT i.id FROM incidents i WHERE i.id = :id AND {in_scope} FOR SHARE"),  # noqa: S608
        {"id": incident_id, **params},
    ).scalar_one_or_none()
    if found is None:
        raise FieldworkInputError("incident_id", f"no incident {incident_id}")
    return int(found)


def link(conn: Conn, hazard_id: int, incident_id: int, origin: str, actor: str, now: dt.datetime) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO hazard_incidents (hazard_id, incident_id, origin, created_at) "
            "VALUES (:h, :i, :origin, :now) ON CONFLICT DO NOTHING"
        ),
        {"h": hazard_id, "i": incident_id, "origin": origin, "now": now},
    )
    note = f"incident {incident_id}" + (" raised" if origin == "hazard" else " revealed this hazard")
    hazards.event(conn, hazard_id, now, actor, "link_incident", None, None, note=note)


def raise_incident(
    conn: Conn,
    hazard_id: int,
    data: Mapping[str, Any],
    actor: str,
    scope: Scope = WHOLE_COUNTY,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """An incident at the hazard's position, linked to it; (incident, created). Raising again
    returns the first incident (its idempotency key is the hazard's)."""
    from gis.incidents.intake import create_incident

    now = now or dt.datetime.now(dt.UTC)
    hazard = hazards.lock(conn, hazard_id, scope)
    row = conn.execute(
        sa.text("SELECT category, description, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM hazards WHERE id = :id"),
        {"id": hazard_id},
    ).one()
    category = data.get("category") or INCIDENT_CATEGORY.get(row.category, DEFAULT_INCIDENT_CATEGORY)
    if category not in rules.CATEGORIES:
        raise FieldworkInputError("category", f"{str(category)[:40]!r} is not an incident category")
    description = text(data, "description", 4000) or f"隐患 {hazard_id}（{row.category}）：{row.description or ''}"
    body = {
        "lon": row.lon,
        "lat": row.lat,
        "crs": "wgs84",
        "category": category,
        "source": INCIDENT_SOURCE,
        "description": description[:4000],
        "reported_at": now.isoformat(),
    }
    incident, created = create_incident(conn, body, actor, f"hazard:{hazard_id}", settings, now=now)
    if created:
        link(conn, hazard_id, int(incident["id"]), "hazard", actor, now)
        audit.record(conn, actor, "hazard.raise_incident", f"hazard/{hazard_id}", incident_id=incident["id"],
                     status=hazard["status"])  # fmt: skip
    return incident, created


def incidents_of(conn: Conn, hazard_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT l.incident_id, l.origin, l.created_at, i.status, i.category FROM hazard_incidents l "
            "JOIN incidents i ON i.id = l.incident_id WHERE l.hazard_id = :h ORDER BY l.created_at"
        ),
        {"h": hazard_id},
    ).mappings()
    return [dict(r) for r in rows]
