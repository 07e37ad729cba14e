"""A building as field work sees it: the row (checked against the caller's scope), its inspection
history, its hazards, and the risk level and next-inspection date its latest inspection set.

The days between inspections per risk level are rows of ``risk_intervals`` (migration 0018:
high 7, medium 30, low 90), so a county changes them without a release (``set_interval``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gis.core.vocab import ASSIGN_COLUMNS, RISK_LEVELS
from gis.fieldwork.common import FieldworkInputError, NotFound
from gis.fieldwork.overdue import is_hazard_overdue
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

HISTORY_LIMIT = 100


def lock_building(conn: Conn, building_id: Any, scope: Scope = WHOLE_COUNTY) -> sa.RowMapping:
    """The building, locked for this transaction (one inspection at a time settles its risk);
    outside the caller's scope is the same as missing (NotFound: 404)."""
    if isinstance(building_id, bool) or not isinstance(building_id, int) or not 1 <= building_id < 2**63:
        raise FieldworkInputError("building_id", f"{building_id!r} is not a building id")
    in_scope, params = scope.where("b")
    row = (
        conn.execute(
            sa.text(
                "SELECT b.id, b.is_rental, b.last_inspected_at, b.grid_code, b.town_code FROM buildings b "  # noqa: S608
                f"WHERE b.id = :id AND {in_scope} FOR UPDATE"
            ),
            {"id": building_id, **params},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound("building", building_id)
    return row


def intervals(conn: Conn) -> dict[str, int]:
    rows = conn.execute(sa.text("SELECT risk_level, days FROM risk_intervals")).all()
    return {r.risk_level: r.days for r in rows}


def set_interval(conn: Conn, risk_level: str, days: int) -> None:
    if risk_level not in RISK_LEVELS:
        raise FieldworkInputError("risk_level", f"{risk_level!r} is not one of {', '.join(RISK_LEVELS)}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise FieldworkInputError("days", f"{days!r} is not a number of days from 1 to 3650")
    conn.execute(
        sa.text(
            "INSERT INTO risk_intervals (risk_level, days) VALUES (:r, :d) "
            "ON CONFLICT (risk_level) DO UPDATE SET days = EXCLUDED.days"
        ),
        {"r": risk_level, "d": days},
    )


_BUILDING_COLUMNS = ", ".join(
    [
        *(
            f"b.{c}"
            for c in (
                "id", "code", "name", "floors", "households", "residents", "is_rental", "landlord_name",
                "landlord_phone", "tenants", "rooms", "risk_level", "last_inspected_at", "next_inspection_on",
                "last_inspection_id", *ASSIGN_COLUMNS,
            )
        ),
        "ST_X(b.geom) AS lon",
        "ST_Y(b.geom) AS lat",
    ]
)  # fmt: skip

_HISTORY = sa.text(
    """SELECT i.id, i.at, i.room, i.outcome, i.risk_level, i.failed_items, i.notes, i.actor,
              c.kind AS checklist_kind, c.version AS checklist_version,
              ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
              (SELECT coalesce(json_agg(json_build_object('posting_id', p.id, 'role', p.role, 'person_id', p.person_id,
                                                          'name', pe.name) ORDER BY p.id), '[]')
               FROM inspection_inspectors ii JOIN postings p ON p.id = ii.posting_id
               JOIN people pe ON pe.id = p.person_id WHERE ii.inspection_id = i.id) AS inspectors,
              (SELECT coalesce(json_agg(json_build_object('code', r.item_code, 'result', r.result, 'note', r.note)
                                        ORDER BY r.item_code), '[]')
               FROM inspection_results r WHERE r.inspection_id = i.id) AS results
       FROM inspections i JOIN checklists c ON c.id = i.checklist_id
       WHERE i.building_id = :id ORDER BY i.at DESC, i.id DESC LIMIT :lim"""
)

_HAZARDS = sa.text(
    f"""SELECT h.id, h.category, h.severity, h.status, h.found_at, h.rectify_by, h.rectified_at,
               h.responsible_party, h.inspection_id, h.item_code, h.escalation_level,
               {is_hazard_overdue("h")} AS overdue
        FROM hazards h WHERE h.building_id = :id ORDER BY h.found_at DESC, h.id DESC LIMIT :lim"""  # noqa: S608
)


def building_detail(conn: Conn, building_id: int, scope: Scope = WHOLE_COUNTY) -> dict[str, Any]:
    """``GET /buildings/{id}``: the building, its inspections newest first (inspectors and each
    item's result) and its hazards."""
    in_scope, params = scope.where("b")
    row = (
        conn.execute(
            sa.text(f"SELECT {_BUILDING_COLUMNS} FROM buildings b WHERE b.id = :id AND {in_scope}"),  # noqa: S608
            {"id": building_id, **params},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound("building", building_id)
    out = dict(row)
    out["inspections"] = [dict(r) for r in conn.execute(_HISTORY, {"id": building_id, "lim": HISTORY_LIMIT}).mappings()]
    out["hazards"] = [dict(r) for r in conn.execute(_HAZARDS, {"id": building_id, "lim": HISTORY_LIMIT}).mappings()]
    return out
