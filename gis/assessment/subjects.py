"""Who and what is assessed, inside the caller's scope: people with a posting in force in the month
(the posting's area inside the scope, gis.fieldwork's rule for a person), and the grids of the
boundaries in force. A person, grid, area or organisation unit outside the scope is not found."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.analysis.periods import next_start
from gis.core.vocab import POSTING_ROLES
from gis.people.scope import Scope, code_layer
from gis.spatial.areas import Conn

from .scheme import AssessmentInputError, AssessmentNotFound


def _like(code: str) -> str:
    return code.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def check_subject(conn: Conn, level: str, key: object, scope: Scope) -> str:
    """The key of a person (id) or grid (code) inside ``scope``, as text."""
    if level == "person":
        if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and key.isdigit())):
            raise AssessmentInputError("key", key, "is not a person id")
        if not 0 < int(key) < 2**63:
            raise AssessmentInputError("key", key, "is not a person id")
        where, params = scope.code_where("p.area_code")
        found = conn.execute(
            sa.text(f"SELECT 1 FROM postings p WHERE p.person_id = :id AND {where} LIMIT 1"),  # noqa: S608
            {**params, "id": int(key)},
        ).first()
        if found is None:
            raise AssessmentNotFound("key", key)
        return str(int(key))
    if not isinstance(key, str) or code_layer(key) != "grid":
        raise AssessmentInputError("key", key, "is not a grid code (15 digits)")
    found = conn.execute(
        sa.text("SELECT 1 FROM areas WHERE layer = 'grid' AND code = :c AND gen_to IS NULL"), {"c": key}
    ).first()
    if found is None or not scope.contains(key):
        raise AssessmentNotFound("key", key)
    return key


def _area_filter(conn: Conn, area: str | None, org: str | None, scope: Scope) -> tuple[str | None, int | None]:
    """The area code prefix and the org unit id the request narrows to (404 outside the scope)."""
    if area is not None:
        if code_layer(area) is None:
            raise AssessmentInputError("area", area, "is not an area code")
        found = conn.execute(sa.text("SELECT 1 FROM areas WHERE code = :c AND gen_to IS NULL"), {"c": area}).first()
        if found is None or not scope.shows(area):
            raise AssessmentNotFound("area", area)
    org_id = None
    if org is not None:
        unit = conn.execute(sa.text("SELECT id, area_code FROM org_units WHERE code = :c"), {"c": org}).first()
        if unit is None or not scope.shows(unit.area_code):
            raise AssessmentNotFound("org", org)
        org_id = int(unit.id)
        if area is None:
            area = unit.area_code
    return area, org_id


def subjects(
    conn: Conn,
    level: str,
    month: dt.date,
    scope: Scope,
    area: str | None = None,
    org: str | None = None,
    role: str | None = None,
) -> dict[str, dict[str, Any]]:
    """key -> {name, areas} of the people (with a posting of ``role``, when given) or grids assessed."""
    if role is not None and role not in POSTING_ROLES:
        raise AssessmentInputError("role", role, f"is not one of {', '.join(POSTING_ROLES)}")
    if role is not None and level != "person":
        raise AssessmentInputError("role", role, "only narrows the people (level=person)")
    area, org_id = _area_filter(conn, area, org, scope)
    last = next_start(month, "month") - dt.timedelta(days=1)
    if level == "person":
        where, params = scope.code_where("p.area_code")
        # A posting whose area lies inside the area asked for; an org unit keeps its own members.
        rows = conn.execute(
            sa.text(
                "SELECT CAST(pe.id AS text) AS key, pe.name, array_agg(DISTINCT p.area_code ORDER BY p.area_code) "  # noqa: S608
                "AS areas FROM people pe JOIN postings p ON p.person_id = pe.id "
                f"WHERE p.starts_on <= :last AND (p.ends_on IS NULL OR p.ends_on >= :first) AND {where} "
                "AND (CAST(:area AS text) IS NULL OR p.area_code LIKE :area_like) "
                "AND (CAST(:org AS int) IS NULL OR p.org_unit_id = :org) "
                "AND (CAST(:role AS text) IS NULL OR p.role = :role) GROUP BY pe.id, pe.name"
            ),
            {
                **params,
                "first": month,
                "last": last,
                "area": area,
                "area_like": _like(area or ""),
                "org": org_id,
                "role": role,
            },  # fmt: skip
        ).all()
    else:
        where, params = scope.code_where("a.code")
        rows = conn.execute(
            sa.text(
                "SELECT a.code AS key, a.name, ARRAY[a.code] AS areas FROM areas a "  # noqa: S608
                f"WHERE a.layer = 'grid' AND a.gen_to IS NULL AND {where} "
                "AND (CAST(:area AS text) IS NULL OR a.code LIKE :area_like)"
            ),
            {**params, "area": area, "area_like": _like(area or "")},
        ).all()
    return {r.key: {"name": r.name, "areas": list(r.areas)} for r in rows}
