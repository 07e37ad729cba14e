"""Reading incidents back: one incident with its history, and filtered pages of them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.incidents import rules
from gis.incidents.intake import _CODE, _QUOTED_OPEN, _QUOTED_PENDING, COLUMNS, IncidentInputError, _number, describe
from gis.incidents.totals import TotalCounter
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


def get_incident(conn: Conn, incident_id: int, with_history: bool = True) -> dict[str, Any] | None:
    query = sa.text(f"SELECT {COLUMNS} FROM incidents i WHERE i.id = :id")  # noqa: S608
    row = conn.execute(query, {"id": incident_id}).one_or_none()
    if row is None:
        return None
    out = describe(row.incident)
    if with_history:
        out["history"] = history(conn, incident_id)
    return out


# --- listing -----------------------------------------------------------------------------------

AREA_FILTERS = ("town", "village", "grid", "micro_grid", "station", "beat")


@dataclass
class IncidentFilter:
    """What ``list_incidents`` selects; every field narrows the result, None = no constraint."""

    town: list[str] | None = None
    village: list[str] | None = None
    grid: list[str] | None = None
    micro_grid: list[str] | None = None
    station: list[str] | None = None
    beat: list[str] | None = None
    category: list[str] | None = None
    source: list[str] | None = None
    status: list[str] | None = None
    assign_status: list[str] | None = None
    overdue: bool | None = None
    open_only: bool = False
    reported_from: dt.datetime | None = None
    reported_to: dt.datetime | None = None
    bbox: tuple[float, float, float, float] | None = None


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``minlon,minlat,maxlon,maxlat`` in WGS-84."""
    parts = text.split(",")
    if len(parts) != 4:
        raise IncidentInputError("bbox", f"{text!r} must be four numbers: minlon,minlat,maxlon,maxlat")
    minlon, minlat, maxlon, maxlat = (_number("bbox", p.strip()) for p in parts)
    for name, value, limit in (
        ("minlon", minlon, 180),
        ("maxlon", maxlon, 180),
        ("minlat", minlat, 90),
        ("maxlat", maxlat, 90),
    ):
        if abs(value) > limit:
            raise IncidentInputError("bbox", f"{name}={value} is out of range [-{limit}, {limit}]")
    if minlon >= maxlon or minlat >= maxlat:
        raise IncidentInputError("bbox", f"{text!r}: min must be below max for lon and lat")
    return minlon, minlat, maxlon, maxlat


def _check_codes(field: str, values: list[str] | None, check: Any) -> None:
    for v in values or ():
        try:
            check(v)
        except rules.RuleError as exc:
            raise IncidentInputError(field, str(exc)) from None


def _where(f: IncidentFilter) -> tuple[str, dict[str, Any]]:
    _check_codes("category", f.category, rules.check_category)
    _check_codes("source", f.source, rules.check_source)
    _check_codes("status", f.status, rules.check_status)
    if f.reported_from and f.reported_to and f.reported_from > f.reported_to:
        raise IncidentInputError("reported_from", "is after reported_to")
    conds: list[str] = []
    params: dict[str, Any] = {}
    for level in AREA_FILTERS:
        codes = getattr(f, level)
        for code in codes or ():
            if not _CODE.match(code):
                raise IncidentInputError(level, f"{code[:40]!r} is not an area code (letters, digits, _ and -)")
        if codes:
            conds.append(f"i.{level}_code = ANY(:{level})")
            params[level] = list(codes)
    for field in ("category", "source", "status", "assign_status"):
        values = getattr(f, field)
        if values:
            conds.append(f"i.{field} = ANY(:{field})")
            params[field] = list(values)
    if f.open_only:
        conds.append(f"i.status IN ({_QUOTED_OPEN})")
    if f.overdue is not None:
        overdue = f"(i.status IN ({_QUOTED_PENDING}) AND i.deadline_at < now())"
        conds.append(overdue if f.overdue else f"NOT {overdue}")
    if f.reported_from:
        conds.append("i.reported_at >= :reported_from")
        params["reported_from"] = f.reported_from
    if f.reported_to:
        conds.append("i.reported_at < :reported_to")
        params["reported_to"] = f.reported_to
    if f.bbox:
        conds.append("i.geom && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)")
        params.update(zip(("minlon", "minlat", "maxlon", "maxlat"), f.bbox, strict=True))
    return (" AND ".join(conds) or "TRUE"), params


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
    where, params = _where(filters)
    total = (totals or TotalCounter()).count(conn, f"incidents i WHERE {where}", params)
    rows = conn.execute(
        sa.text(
            f"SELECT {COLUMNS} FROM incidents i WHERE {where} "  # noqa: S608
            "ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": limit, "offset": offset},
    )
    return [describe(r.incident) for r in rows], int(total)
