"""A grid's figures for its dashboard: counts by status and category, and the weekly trend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from gis.core.privacy import (
    mask_staff,
    role_sees_personal_data,
)
from gis.outputs.mapfilter import DONE_STATUSES, OPEN_STATUSES, OVERDUE_SQL, IncidentFilter
from gis.spatial.areas import Conn


def grid_stats(
    conn: Conn,
    flt: IncidentFilter,
    *,
    codes: Sequence[str] | None = None,
    now: dt.datetime | None = None,
    role: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per grid: incidents in the window (total, open, closed), overdue now, rental buildings,
    open hazards, and the staff (phones masked per ``role``)."""
    where, params = flt.sql()
    params |= {"now": now or dt.datetime.now(dt.UTC), "open": list(OPEN_STATUSES), "done": list(DONE_STATUSES)}
    code_filter = ""
    if codes is not None:
        code_filter = " AND grid_code = ANY(:codes)"
        params["codes"] = list(codes)
    out: dict[str, dict[str, Any]] = {}

    def slot(code: str) -> dict[str, Any]:
        return out.setdefault(
            code,
            {"incidents": 0, "open": 0, "done": 0, "overdue": 0, "rentals": 0, "hazards_open": 0, "staff": []},
        )

    for r in conn.execute(
        sa.text(
            "SELECT grid_code, count(*) AS n, count(*) FILTER (WHERE status = ANY(:open)) AS open, "  # noqa: S608
            "count(*) FILTER (WHERE status = ANY(:done)) AS done "
            f"FROM incidents WHERE {where}{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code).update(incidents=r.n, open=r.open, done=r.done)
    for r in conn.execute(
        sa.text(
            f"SELECT grid_code, count(*) AS n FROM incidents WHERE {OVERDUE_SQL}"  # noqa: S608
            f"{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code)["overdue"] = r.n
    for r in conn.execute(
        sa.text(
            "SELECT grid_code, count(*) AS n FROM buildings WHERE is_rental"  # noqa: S608
            f"{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code)["rentals"] = r.n
    for r in conn.execute(
        sa.text(
            "SELECT grid_code, count(*) AS n FROM hazards WHERE status <> 'rectified'"  # noqa: S608
            f"{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code)["hazards_open"] = r.n
    staff = conn.execute(
        sa.text(
            "SELECT grid_code, role, name, phone FROM staff WHERE active"  # noqa: S608
            f"{code_filter} ORDER BY grid_code, role, id"
        ),
        params,
    ).mappings()
    for person in staff:
        entry = {k: person[k] for k in ("role", "name", "phone")}
        slot(person["grid_code"])["staff"].append(mask_staff(entry, role_sees_personal_data(role)))
    return out


def weekly_trend(conn: Conn, flt: IncidentFilter, grid_code: str) -> list[dict[str, Any]]:
    """Incidents per ISO week (local time) and category in one grid, with how many are done."""
    where, params = flt.sql()
    rows = conn.execute(
        sa.text(
            "SELECT date_trunc('week', reported_at AT TIME ZONE 'Asia/Shanghai')::date AS week, category, "  # noqa: S608
            "count(*) AS n, count(*) FILTER (WHERE status = ANY(:done)) AS done "
            f"FROM incidents WHERE {where} AND grid_code = :grid GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {**params, "grid": grid_code, "done": list(DONE_STATUSES)},
    ).mappings()
    return [{"week": r["week"], "category": r["category"], "count": r["n"], "done": r["done"]} for r in rows]
