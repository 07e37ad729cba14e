"""Organisation units: the county centre (县社会治理中心), town centres (镇街道综合信息指挥室),
village stations (村社区工作站), police stations (派出所) and departments (市场监管, 应急管理, 住建,
消防, 综合执法 ...), each responsible for an area of one layer.

A unit's members are the postings that name it (postings.org_unit_id), so membership has dates
and history like every posting. A village station flagged ``is_key`` marks a key village (重点村),
whose chief grid leader is a community police officer (the staffing report checks that).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from gis.core import audit
from gis.people.rules import PeopleInputError, check_kind, check_layer, county_today
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.people.write import NotFoundError, resolve_area
from gis.spatial.areas import Conn

UNIT_COLUMNS = "ou.id, ou.code, ou.name, ou.kind, ou.layer, ou.area_code, ou.parent_code, ou.is_key"
# The layer each kind of unit is responsible for, when the request leaves it out.
KIND_LAYERS = {
    "county_centre": "county",
    "town_centre": "town",
    "village_station": "village",
    "police_station": "station",
    "department": "county",
}


def _text(field: str, value: object, required: bool = True, max_len: int = 100) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        if required:
            raise PeopleInputError(field, value, "is required")
        return None
    if len(text) > max_len:
        raise PeopleInputError(field, value, f"is longer than {max_len} characters")
    return text


def get_org_unit(conn: Conn, code: str) -> dict[str, Any]:
    row = conn.execute(
        sa.text(f"SELECT {UNIT_COLUMNS} FROM org_units ou WHERE ou.code = :c"),  # noqa: S608
        {"c": code},
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no organisation unit with code {code!r}")
    return dict(row._mapping)


def create_org_unit(conn: Conn, actor: str, data: dict[str, Any]) -> dict[str, Any]:
    """A new unit: code, name, kind, the area (layer optional, from the kind), parent unit code, is_key."""
    code = _text("code", data.get("code"), max_len=32) or ""
    name = _text("name", data.get("name")) or ""
    kind = check_kind(data.get("kind"))
    layer = check_layer(data.get("layer"), required=False) or KIND_LAYERS[kind]
    layer, area = resolve_area(conn, layer, data.get("area_code"))
    parent = _text("parent_code", data.get("parent_code"), required=False, max_len=32)
    if conn.execute(sa.text("SELECT 1 FROM org_units WHERE code = :c"), {"c": code}).scalar():
        raise PeopleInputError("code", code, f"an organisation unit with code {code!r} exists")
    if (
        parent is not None
        and not conn.execute(sa.text("SELECT 1 FROM org_units WHERE code = :c"), {"c": parent}).scalar()
    ):
        raise PeopleInputError("parent_code", parent, f"no organisation unit with code {parent!r}")
    is_key = bool(data.get("is_key") or False)
    if is_key and kind != "village_station":
        raise PeopleInputError("is_key", is_key, "only a village station marks a key village")
    conn.execute(
        sa.text(
            "INSERT INTO org_units (code, name, kind, layer, area_code, parent_code, is_key) "
            "VALUES (:code, :name, :kind, :layer, :area, :parent, :key)"
        ),
        {"code": code, "name": name, "kind": kind, "layer": layer, "area": area, "parent": parent, "key": is_key},
    )
    audit.record(conn, actor, "org_unit.create", f"org_unit:{code}", kind=kind, layer=layer, area_code=area)
    return get_org_unit(conn, code)


def create_org_units(conn: Conn, actor: str, frame: pd.DataFrame, first_row: int = 1) -> int:
    """Create the units of a table (columns as ``create_org_unit`` takes), parents first; raises
    PeopleInputError naming the row (``first_row`` for the first record) and field of the first bad one."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for number, record in enumerate(records, start=first_row):
        try:
            create_org_unit(conn, actor, record)
        except PeopleInputError as exc:
            raise PeopleInputError(exc.field, exc.value, f"row {number}: {exc.reason}") from None
    return len(records)


def list_org_units(
    conn: Conn,
    *,
    kind: str | None = None,
    area_code: str | None = None,
    is_key: bool | None = None,
    scope: Scope = WHOLE_COUNTY,
) -> list[dict[str, Any]]:
    """Units whose area is inside ``scope``, with the number of members in force today."""
    in_scope, scope_params = scope.code_where("ou.area_code")
    rows = conn.execute(
        sa.text(
            f"SELECT {UNIT_COLUMNS}, count(po.id) FILTER (WHERE pe.status = 'active' AND po.starts_on <= :today "  # noqa: S608
            "AND (po.ends_on IS NULL OR po.ends_on >= :today)) AS members "
            "FROM org_units ou LEFT JOIN postings po ON po.org_unit_id = ou.id "
            "LEFT JOIN people pe ON pe.id = po.person_id "
            "WHERE (CAST(:kind AS text) IS NULL OR ou.kind = :kind) "
            "AND (CAST(:area AS text) IS NULL OR ou.area_code = :area) "
            "AND (CAST(:key AS boolean) IS NULL OR ou.is_key = :key) "
            f"AND {in_scope} "
            "GROUP BY ou.id ORDER BY ou.kind, ou.code"
        ),
        {"kind": kind, "area": area_code, "key": is_key, "today": county_today(), **scope_params},
    ).all()
    return [dict(r._mapping) for r in rows]
