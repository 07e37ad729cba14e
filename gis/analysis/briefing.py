"""The weekly briefing (每周会商研判) of the county or of one town: one ISO week's figures, each
taken from the module that defines it, never computed a second way here.

* ``kpis``: ``gis.analysis.kpis.compute_kpis`` for the incidents reported in the week, in total and
  per unit (towns for the county, villages for a town), with the change against the week before
  (``compute_kpis``' own "previous" window) and against the SAME ISO WEEK a year earlier (its own
  ``compute_kpis`` run, compared with ``kpis.changes``: ISO week 48 of 2025 starts on a Monday as
  2026's does, where "the same dates" would not). Week 53 compares with week 52 in a year without one.
* ``backlog``: the current open, pending, overdue and escalated counts per unit, by
  ``gis.core.predicates.backlog_counts`` at ``now`` (status is kept as it is now, not per day, so a
  past week's briefing shows today's backlog).
* ``hazards``: hazards overdue at ``now`` (``gis.fieldwork.overdue.is_hazard_overdue``) per unit,
  and the longest overdue ones.
* ``hotspots``: grids hot this week (``gis.analysis.hotspots``) and grids that are a *new* hot
  spot this week (``gis.analysis.emerging``, 8 weeks ending with this one). Both are computed over
  the whole county and keep only the grids inside the caller's scope and the town; the runs are
  kept in memory until the incidents they read change (``gis.analysis.briefing_hotspots``).
* ``repeats``: repeat locations (``gis.analysis.repeats``: 3+ incidents at one place in the 30 days
  ending with the week) that had an incident this week.
* ``categories``: per incident category, the count this week and the mean of the 4 weeks before;
  ``rising`` lists those above that mean, the largest rise first.

Every incident figure is selected by one ``IncidentFilter`` (the caller's scope, and the town).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from gis.analysis.briefing_hotspots import hotspot_section
from gis.analysis.kpis import changes, compute_kpis
from gis.analysis.periods import county_midnight
from gis.analysis.repeats import repeat_locations
from gis.analysis.units import period_window
from gis.core.predicates import BACKLOG, backlog_counts, is_current, is_open
from gis.core.vocab import COUNTY_TZ
from gis.fieldwork.hazardquery import HazardFilter
from gis.fieldwork.overdue import is_hazard_overdue
from gis.incidents import rules
from gis.incidents.filter import IncidentFilter
from gis.people.scope import WHOLE_COUNTY, Scope, code_layer
from gis.spatial.areas import Conn

if TYPE_CHECKING:
    from gis.analysis.gistar import PValue

_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$")
RISING_WEEKS = 4  # "rising": this week's count above the mean of this many weeks before it
HAZARD_LIST = 20  # longest overdue hazards listed; the counts are complete
REPEAT_LIST = 50
# The headline KPIs (the briefing's first table and the page's strip), in this order.
HEADLINE = ("reported", "closed", "closure_rate", "on_time_rate", "satisfaction_rate", "settled_in_town_rate")


class BriefingError(ValueError):
    """A briefing request value is unusable; ``field`` and ``value`` name it (the API answers 422)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={str(value)[:40]!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


def parse_week(text: str) -> dt.date:
    """The Monday of ISO week ``YYYY-Www`` (``2026-W48``), or of the week holding a date ``YYYY-MM-DD``."""
    value = text.strip()
    match = _WEEK.match(value)
    if not match:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise BriefingError("week", text, "is not an ISO week like 2026-W48 or a date like 2026-11-23") from None
        return day - dt.timedelta(days=day.weekday())
    try:
        return dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise BriefingError("week", text, f"year {match[1]} has no week {match[2]}") from None


def week_label(monday: dt.date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def week_window(week: dt.date | None, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[Monday, next Monday) in county time of the week holding ``week``; default the last complete week."""
    return period_window(week, "week", now)


def same_week_last_year(monday: dt.date) -> tuple[dt.datetime, dt.datetime]:
    year, week, _ = monday.isocalendar()
    try:
        start = dt.date.fromisocalendar(year - 1, week, 1)
    except ValueError:  # week 53 in a year of 52
        start = dt.date.fromisocalendar(year - 1, 52, 1)
    return county_midnight(start), county_midnight(start + dt.timedelta(days=7))


def check_town(conn: Conn, town: str, scope: Scope) -> str | None:
    """The name of town ``town`` in force when the caller may see it, else None (the API: 404).
    A scope inside the town (a village, a grid) sees the town, and only its own part of it."""
    if code_layer(town) != "town":
        raise BriefingError("town", town, "is not a town code (9 digits)")
    if not scope.shows(town):
        return None
    name = conn.execute(
        sa.text(f"SELECT name FROM areas WHERE layer = 'town' AND code = :c AND {is_current()}"),  # noqa: S608
        {"c": town},
    ).scalar_one_or_none()
    return None if name is None else str(name)


def _names(conn: Conn, layer: str, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = conn.execute(
        sa.text(f"SELECT code, name FROM areas WHERE layer = :l AND code = ANY(:c) AND {is_current()}"),  # noqa: S608
        {"l": layer, "c": codes},
    ).all()
    return {str(c): str(n) for c, n in rows}


def kpi_section(
    conn: Conn, flt: IncidentFilter, start: dt.datetime, end: dt.datetime, monday: dt.date, unit: str
) -> dict[str, Any]:
    """The week's KPIs in total and per ``unit``: ``compute_kpis`` with ``vs_last_year`` taken
    against the same ISO week a year earlier."""
    data = compute_kpis(conn, flt, start, end, group_by=unit)
    ly_start, ly_end = same_week_last_year(monday)
    last = compute_kpis(conn, flt, ly_start, ly_end, group_by=unit)
    last_groups = {g["key"]: g["kpis"] for g in last["groups"]}

    def against(kpis: dict[str, Any], other: dict[str, Any] | None) -> dict[str, Any]:
        return changes(kpis, other if other and other["reported"] else None)

    data["total"]["vs_last_year"] = against(data["total"]["kpis"], last["total"]["kpis"])
    for group in data["groups"]:
        group["vs_last_year"] = against(group["kpis"], last_groups.get(group["key"]))
    data["windows"]["last_year"] = {"start": ly_start.isoformat(), "end": ly_end.isoformat()}
    return data


def backlog_by_unit(conn: Conn, flt: IncidentFilter, unit: str, now: dt.datetime) -> dict[str, Any]:
    """The current backlog (open, pending, overdue, escalated) per ``unit`` code and in total."""
    # Every backlog count is of open incidents (overdue and escalated ones are open too): only those
    # rows are read, which the partial index on open incidents serves.
    where, params = flt.current().where("i", now="now")
    rows = conn.execute(
        sa.text(
            f"SELECT i.{unit}_code AS code, GROUPING(i.{unit}_code) AS total_row, {backlog_counts('i', 'now')} "  # noqa: S608
            f"FROM incidents i WHERE {where} AND {is_open('i')} GROUP BY GROUPING SETS ((i.{unit}_code), ())"
        ),
        {**params, "now": now},
    ).mappings()
    total = dict.fromkeys(BACKLOG, 0)
    units: list[dict[str, Any]] = []
    for r in rows:
        counts = {k: int(r[k]) for k in BACKLOG}
        if r["total_row"]:
            total = counts
        else:
            units.append({"code": r["code"], **counts})
    names = _names(conn, unit, [u["code"] for u in units if u["code"]])
    for u in units:
        u["name"] = names.get(u["code"]) if u["code"] else None
    units.sort(key=lambda u: (-u["overdue"], -u["open"], u["code"] or ""))
    return {"total": total, "units": units}


def hazard_section(conn: Conn, scope: Scope, town: str | None, unit: str, now: dt.datetime) -> dict[str, Any]:
    """Hazards overdue at ``now`` per ``unit`` and in total, and the ``HAZARD_LIST`` longest overdue."""
    flt = HazardFilter(town=(town,) if town else (), scope=scope)
    where, params = flt.where("h", now="CAST(:now AS timestamptz)")
    overdue = is_hazard_overdue("h", "CAST(:now AS timestamptz)")
    params["now"] = now
    rows = conn.execute(
        sa.text(
            f"SELECT h.{unit}_code AS code, count(*) AS n FROM hazards h "  # noqa: S608
            f"WHERE {where} AND {overdue} GROUP BY 1 ORDER BY 2 DESC, 1"
        ),
        params,
    ).all()
    names = _names(conn, unit, [str(c) for c, _ in rows if c])
    units = [{"code": c, "name": names.get(c) if c else None, "overdue": int(n)} for c, n in rows]
    items = conn.execute(
        sa.text(
            "SELECT h.id, h.category, h.severity, h.status, h.found_at, h.rectify_by, h.town_code, "  # noqa: S608
            f"h.village_code, h.grid_code, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat FROM hazards h "
            f"WHERE {where} AND {overdue} ORDER BY h.rectify_by NULLS LAST, h.id LIMIT :lim"
        ),
        {**params, "lim": HAZARD_LIST},
    ).mappings()
    listed = [
        {
            **{k: v for k, v in r.items() if k not in ("found_at", "rectify_by")},
            "found_at": _iso(r["found_at"]),
            "rectify_by": _iso(r["rectify_by"]),
        }
        for r in items
    ]
    return {"overdue": sum(u["overdue"] for u in units), "units": units, "items": listed}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(COUNTY_TZ).isoformat()


def category_section(conn: Conn, flt: IncidentFilter, start: dt.datetime) -> list[dict[str, Any]]:
    """Per category: this week's count, the mean of the ``RISING_WEEKS`` weeks before, the change."""
    t0 = start - dt.timedelta(days=7 * RISING_WEEKS)
    where, params = flt.replace(start=t0, end=start + dt.timedelta(days=7), window=None).where("i")
    rows = conn.execute(
        sa.text(
            "SELECT i.category, floor(extract(epoch FROM (i.reported_at - :t0)) / 604800)::int AS k, "  # noqa: S608
            f"count(*) AS n FROM incidents i WHERE {where} GROUP BY 1, 2"
        ),
        {**params, "t0": t0},
    ).all()
    weeks: dict[str, list[int]] = {}
    for category, k, n in rows:
        weeks.setdefault(category, [0] * (RISING_WEEKS + 1))[k] += int(n)
    out: list[dict[str, Any]] = []
    for category, counts in weeks.items():
        mean = sum(counts[:RISING_WEEKS]) / RISING_WEEKS
        this = counts[RISING_WEEKS]
        known = rules.CATEGORIES.get(category)
        out.append(
            {
                "category": category,
                "zh": known.zh if known else category,
                "en": known.en if known else category,
                "count": this,
                "previous_mean": round(mean, 2),
                "change": round(this - mean, 2),
                "ratio": round(this / mean, 3) if mean else None,
                "weekly": counts,
            }
        )
    out.sort(key=lambda c: (-c["change"], -c["count"], c["category"]))
    return out


def repeat_section(conn: Conn, flt: IncidentFilter, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Repeat locations of the 30 days ending with the week that had an incident in the week."""
    result = repeat_locations(conn, flt, end=end)
    week_start = start.astimezone(COUNTY_TZ).isoformat()
    # ISO texts of one zone compare as times.
    active = [loc for loc in result["locations"] if loc["last_at"] >= week_start]
    return {
        "days": result["days"],
        "min_count": result["min_count"],
        "start": result["start"],
        "end": result["end"],
        "total": len(active),
        "locations": active[:REPEAT_LIST],
    }


def weekly_briefing(
    conn: Conn,
    *,
    scope: Scope = WHOLE_COUNTY,
    town: str | None = None,
    week: dt.date | None = None,
    now: dt.datetime | None = None,
    p_value: PValue = "permutation",
    permutations: int | None = None,
) -> dict[str, Any]:
    """The briefing of ``town`` (or the county) for the ISO week holding ``week`` (default the last
    complete one), as the caller of ``scope`` sees it. ``town`` must have passed ``check_town``.
    ``p_value`` and ``permutations`` (default: the hot-spot analysis' own) are the Gi* runs'."""
    at = now or dt.datetime.now(dt.UTC)
    start, end = week_window(week, at)
    monday = start.astimezone(COUNTY_TZ).date()
    unit = "village" if town else "town"
    flt = IncidentFilter(town=(town,) if town else (), scope=scope)
    town_name = _names(conn, "town", [town]).get(town) if town else None
    categories = category_section(conn, flt, start)
    return {
        "week": week_label(monday),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "as_of": at.astimezone(COUNTY_TZ).isoformat(),
        "area": {"layer": "town", "code": town, "name": town_name}
        if town
        else {"layer": "county", "code": None, "name": None},
        "scope": scope.label(),
        "unit": unit,
        "headline": list(HEADLINE),
        "kpis": kpi_section(conn, flt, start, end, monday, unit),
        "backlog": backlog_by_unit(conn, flt, unit, at),
        "hazards": hazard_section(conn, scope, town, unit, at),
        "hotspots": hotspot_section(conn, scope, town, monday, at, p_value, permutations),
        "repeats": repeat_section(conn, flt, start, end),
        "categories": categories,
        "rising": [c["category"] for c in categories if c["change"] > 0],
    }
