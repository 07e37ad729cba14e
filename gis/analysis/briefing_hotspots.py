"""The briefing's hot spots: grids hot in the week (``gis.analysis.hotspots``) and grids newly hot
in it (``gis.analysis.emerging``, 8 weeks ending with it), kept inside the caller's scope and town.

Both are computed over the whole county, as the analyses define them, so one computation serves
every reader: the county's briefing and each town's, JSON, XLSX and page. The Gi* runs are the
briefing's cost (nine runs over the demo's 760 grids at 9,999 permutations: 10-20 s on a loaded
2-core machine), so their answer is kept in memory under a fingerprint of everything they read:
the boundary generation, the week, the p-value options, and the count, largest id and a checksum of
(grid, report time) of the incidents reported in the 8 weeks. Any new, deleted, moved or re-dated
incident there changes the fingerprint and the runs are made again; Gi* draws with a fixed seed,
so a kept answer is the one a new run would give.
"""

from __future__ import annotations

import datetime as dt
from threading import Lock
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from gis.analysis.units import _db_key as db_key
from gis.analysis.units import period_window
from gis.incidents.filter import IncidentFilter
from gis.people.scope import Scope
from gis.spatial.areas import Conn, current_generation

if TYPE_CHECKING:
    from gis.analysis.gistar import PValue

MAX_KEPT = 16
_KEPT: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}
_LOCK = Lock()


def _fingerprint(conn: Conn, start: dt.datetime, end: dt.datetime) -> tuple[int, int, int]:
    row = conn.execute(
        sa.text(
            "SELECT count(*), coalesce(max(id), 0), "
            "coalesce(sum(hashtext(coalesce(grid_code, '') || '|' || CAST(reported_at AS text))), 0) "
            "FROM incidents WHERE reported_at >= :s AND reported_at < :e"
        ),
        {"s": start, "e": end},
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def _runs(
    conn: Conn, monday: dt.date, now: dt.datetime, p_value: PValue, permutations: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hot spots of the week, emerging hot spots of the 8 weeks) over the whole county, kept."""
    # Gi* needs esda and libpysal (with pandas): loaded here, not on import, so that the map pages
    # importing the briefing (the command centre's KPI strip) stay light.
    from gis.analysis.emerging import DEFAULT_WEEKS, emerging
    from gis.analysis.hotspots import hotspots

    start, end = period_window(monday, "week", now)
    first = start - dt.timedelta(days=7 * (DEFAULT_WEEKS - 1))
    key = (
        db_key(conn),
        current_generation(conn),
        start,
        p_value,
        permutations,
        _fingerprint(conn, first, end),
    )
    with _LOCK:
        kept = _KEPT.get(key)
    if kept is not None:
        return kept
    county = IncidentFilter()
    week = hotspots(conn, "grid", county, period="week", day=monday, p_value=p_value, permutations=permutations)
    trend = emerging(conn, "grid", county, day=monday, weeks=DEFAULT_WEEKS, p_value=p_value, permutations=permutations)
    with _LOCK:
        if len(_KEPT) >= MAX_KEPT:
            _KEPT.clear()
        _KEPT[key] = (week, trend)
    return week, trend


def hotspot_section(
    conn: Conn,
    scope: Scope,
    town: str | None,
    monday: dt.date,
    now: dt.datetime,
    p_value: PValue,
    permutations: int | None,
) -> dict[str, Any]:
    """Grids hot in the week and grids newly hot in it, inside ``scope`` and ``town``."""
    from gis.analysis.gistar import DEFAULT_PERMUTATIONS, is_hot

    permutations = DEFAULT_PERMUTATIONS if permutations is None else permutations
    week, trend = _runs(conn, monday, now, p_value, permutations)

    def inside(code: str) -> bool:
        return scope.contains(code) and (town is None or code.startswith(town))

    hot = [r for r in week["rows"] if is_hot(r["class"]) and inside(r["code"])]
    hot.sort(key=lambda r: (-(r["gi_z"] or 0), r["code"]))
    new = [r for r in trend["rows"] if r["class"] == "new" and inside(r["code"])]
    classes = {r["code"]: r["class"] for r in week["rows"] if inside(r["code"])}
    return {
        "generation": week["generation"],
        "hot": hot,
        "new": new,
        "classes": classes,
        "emerging_weeks": trend["weeks"],
        "p_value": p_value,
        "permutations": week["permutations"],
    }
