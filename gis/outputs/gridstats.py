"""A grid's figures for its dashboard: counts by status and category, and the weekly trend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from gis.core.predicates import BACKLOG, backlog_counts, is_done, is_open
from gis.core.privacy import (
    mask_staff,
    role_sees_personal_data,
)
from gis.core.vocab import COUNTY_TZ_NAME
from gis.incidents.filter import IncidentFilter
from gis.spatial.areas import Conn


def grid_stats(
    conn: Conn,
    flt: IncidentFilter,
    *,
    codes: Sequence[str] | None = None,
    now: dt.datetime | None = None,
    role: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per grid: incidents reported in the window (``incidents``, ``done``), the current backlog
    whatever the report time (open, pending, overdue, escalated: ``gis.core.vocab``; the
    filter's other fields apply), rental buildings, open hazards, and the staff (phones masked per
    ``role``)."""
    where, params = flt.where("i", now="now")
    current, current_params = flt.current().where("i", now="now", prefix="c_")
    params |= current_params | {"now": now or dt.datetime.now(dt.UTC)}
    code_filter = ""
    if codes is not None:
        code_filter = " AND grid_code = ANY(:codes)"
        params["codes"] = list(codes)
    if not flt.scope.whole:
        # The caller's scope holds for the rentals, hazards and staff counted per grid too.
        in_scope, scope_params = flt.scope.code_where("grid_code", prefix="gs_")
        code_filter += f" AND {in_scope}"
        params.update(scope_params)
    out: dict[str, dict[str, Any]] = {}

    def slot(code: str) -> dict[str, Any]:
        return out.setdefault(
            code,
            {"incidents": 0, "done": 0, **dict.fromkeys(BACKLOG, 0), "rentals": 0, "hazards_open": 0, "staff": []},
        )

    for r in conn.execute(
        sa.text(
            f"SELECT grid_code, count(*) AS n, count(*) FILTER (WHERE {is_done('i')}) AS done "  # noqa: S608
            f"FROM incidents i WHERE {where}{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code).update(incidents=r.n, done=r.done)
    for r in conn.execute(
        sa.text(
            f"SELECT grid_code, {backlog_counts('i', 'now')} FROM incidents i "  # noqa: S608
            f"WHERE {current} AND {is_open('i')}{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code).update({key: getattr(r, key) for key in BACKLOG})
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
    where, params = flt.where("")
    rows = conn.execute(
        sa.text(
            f"SELECT date_trunc('week', reported_at AT TIME ZONE '{COUNTY_TZ_NAME}')::date AS week, category, "  # noqa: S608
            f"count(*) AS n, count(*) FILTER (WHERE {is_done()}) AS done "
            f"FROM incidents WHERE {where} AND grid_code = :grid GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {**params, "grid": grid_code},
    ).mappings()
    return [{"week": r["week"], "category": r["category"], "count": r["n"], "done": r["done"]} for r in rows]
