"""Point layers for the maps: overdue, escalated and recent incidents, rentals, hazards, and the filter choices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa

from gis.incidents import rules as incident_rules
from gis.incidents.filter import IncidentFilter
from gis.outputs.features import _point_collection
from gis.outputs.mapfilter import MapQueryError, _values
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

_INCIDENT_COLUMNS = (
    "id, category, source, status, reported_at, deadline_at, escalation_level, address_text, "
    "reporter_name, reporter_phone, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat"
)


# The maps' two markers of the current backlog (gis.core.vocab): overdue, and open escalated.
Flag = Literal["overdue", "escalated"]
FLAGS: tuple[Flag, ...] = ("overdue", "escalated")


def _flagged(flt: IncidentFilter | None, flag: Flag, grid_code: str | None = None) -> IncidentFilter:
    """``flt`` without its report window (an incident reported last month and still open is exactly
    what the command centre must see today), narrowed to ``flag`` (and to one grid)."""
    if flag not in FLAGS:
        raise MapQueryError(f"flag: {flag!r} is not one of {', '.join(FLAGS)}")
    base = (flt or IncidentFilter()).current()
    if grid_code is not None:
        base = base.replace(grid=(grid_code,))
    return base.replace(overdue=True) if flag == "overdue" else base.replace(open_only=True, escalated=True)


def flagged_incidents(
    conn: Conn,
    flt: IncidentFilter | None,
    flag: Flag,
    *,
    now: dt.datetime | None = None,
    grid_code: str | None = None,
    limit: int = 2000,
    role: str | None = None,
    display_crs: str = "wgs84",
) -> dict[str, Any]:
    """The overdue, or the open escalated, incidents ``flt`` selects whatever their report time,
    oldest first."""
    where, params = _flagged(flt, flag, grid_code).where("", now="now")
    params |= {"now": now or dt.datetime.now(dt.UTC), "lim": limit}
    # The filter runs in a fenced subquery (OFFSET 0) and is sorted afterwards: left to itself the
    # planner walks the whole reported_at index hoping to meet `lim` overdue rows early, reading
    # every incident (150 ms on a year of them) to return a couple of thousand. id breaks ties so
    # that the order, and the page, do not depend on the plan.
    rows = conn.execute(
        sa.text(
            f"SELECT {_INCIDENT_COLUMNS} FROM (SELECT * FROM incidents WHERE {where} "  # noqa: S608
            "OFFSET 0) AS incidents ORDER BY reported_at, id LIMIT :lim"
        ),
        params,
    )
    return _point_collection(list(rows.keys()), rows.all(), display_crs, role)


def count_flagged(conn: Conn, flt: IncidentFilter | None, flag: Flag, *, now: dt.datetime | None = None) -> int:
    """How many incidents ``flagged_incidents`` would return without its limit."""
    where, params = _flagged(flt, flag).where("", now="now")
    sql = f"SELECT count(*) FROM incidents WHERE {where}"  # noqa: S608
    return int(conn.execute(sa.text(sql), {**params, "now": now or dt.datetime.now(dt.UTC)}).scalar_one())


def recent_incidents(
    conn: Conn,
    flt: IncidentFilter,
    *,
    grid_code: str | None = None,
    created_since: dt.datetime | None = None,
    limit: int = 500,
    role: str | None = None,
    display_crs: str = "wgs84",
) -> dict[str, Any]:
    """The latest incidents matching ``flt`` (and received since ``created_since``), newest first."""
    where, params = (flt.replace(grid=(grid_code,)) if grid_code is not None else flt).where("")
    if created_since is not None:
        where += " AND created_at >= :since"
        params["since"] = created_since
    rows = conn.execute(
        sa.text(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {where} "  # noqa: S608
            "ORDER BY reported_at DESC, id DESC LIMIT :lim"
        ),
        {**params, "lim": limit},
    )
    return _point_collection(list(rows.keys()), rows.all(), display_crs, role)


RISK_LEVELS = ("high", "medium", "low")


def rental_buildings(
    conn: Conn,
    *,
    risk_levels: Sequence[str] = (),
    grid_code: str | None = None,
    role: str | None = None,
    display_crs: str = "wgs84",
    limit: int = 100_000,
    scope: Scope = WHOLE_COUNTY,
) -> dict[str, Any]:
    """Rental buildings (出租房屋) with inspection results; landlord details masked per ``role``;
    only those inside ``scope`` (the caller's)."""
    bad = [r for r in risk_levels if r not in RISK_LEVELS]
    if bad:
        raise MapQueryError(f"risk: {bad[0]!r} is not one of {', '.join(RISK_LEVELS)}")
    where: list[str] = ["is_rental"]
    in_scope, params = scope.where()
    params["lim"] = limit
    where.append(in_scope)
    if risk_levels:
        where.append("risk_level = ANY(:risk)")
        params["risk"] = list(risk_levels)
    if grid_code is not None:
        where.append("grid_code = :grid")
        params["grid"] = grid_code
    rows = conn.execute(
        sa.text(
            "SELECT id, code, name, risk_level, tenants, rooms, escape_window, ebike_charging, wiring, "  # noqa: S608
            "last_inspected_at, landlord_name, landlord_phone, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat "
            f"FROM buildings WHERE {' AND '.join(where)} ORDER BY id LIMIT :lim"
        ),
        params,
    )
    return _point_collection(list(rows.keys()), rows.all(), display_crs, role)


def hazard_points(
    conn: Conn,
    *,
    categories: Sequence[str] = (),
    statuses: Sequence[str] = (),
    grid_code: str | None = None,
    display_crs: str = "wgs84",
    limit: int = 50_000,
    scope: Scope = WHOLE_COUNTY,
) -> dict[str, Any]:
    """Hazard points (隐患点) by category and status, inside ``scope`` (the caller's)."""
    in_scope, params = scope.where()
    where: list[str] = [in_scope]
    params["lim"] = limit
    for column, values in (("category", categories), ("status", statuses)):
        if values:
            where.append(f"{column} = ANY(:{column})")
            params[column] = list(_values(column if column != "status" else "hazard status", values))
    if grid_code is not None:
        where.append("grid_code = :grid")
        params["grid"] = grid_code
    rows = conn.execute(
        sa.text(
            "SELECT id, category, severity, status, description, found_at, rectify_by, grid_code, "  # noqa: S608
            f"ST_X(geom) AS lon, ST_Y(geom) AS lat FROM hazards WHERE {' AND '.join(where)} ORDER BY id LIMIT :lim"
        ),
        params,
    )
    return _point_collection(list(rows.keys()), rows.all(), display_crs, None)


def hazard_categories(conn: Conn) -> list[str]:
    return list(conn.execute(sa.text("SELECT DISTINCT category FROM hazards ORDER BY 1")).scalars())


def incident_choices() -> dict[str, list[str]]:
    """Categories and sources for the filter form: those the intake rules accept.

    Taken from the rules rather than the table: a DISTINCT over a year of incidents costs a
    full scan on every page view, and intake refuses any other value anyway.
    """
    return {"category": list(incident_rules.CATEGORIES), "source": list(incident_rules.SOURCES)}
