"""Incident statistics per area level and period: counts, closure rate, overdue counts, mean
handling time. Periods are calendar days, ISO weeks (from Monday) or months in China Standard
Time, by the time an incident was reported.

Definitions (also in the API description):
- closure rate = closed / (total - rejected): incidents not accepted (不予立案) never enter the loop;
- open, pending, overdue and escalated as defined in ``gis.core.vocab`` (overdue = pending with its
  deadline passed at ``now``; escalated counts open incidents escalated above the grid);
- mean handling time = mean of (closed_at - reported_at) over closed incidents, in hours.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.core import predicates as p
from gis.core.vocab import COUNTY_TZ_NAME
from gis.incidents import rules
from gis.incidents.filter import IncidentFilter
from gis.spatial.areas import Conn

DEFAULT_RANGE = dt.timedelta(days=30)
COUNTS = ("total", "closed", "rejected", *p.BACKLOG)


class StatsInputError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _rate(closed: int, total: int, rejected: int) -> float | None:
    base = total - rejected
    return round(closed / base, 4) if base else None


def _mean(hours_sum: float | None, closed: int) -> float | None:
    return round(hours_sum / closed, 3) if closed and hours_sum is not None else None


def incident_stats(
    conn: Conn,
    level: str = "town",
    period: str = "month",
    flt: IncidentFilter | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Statistics of the incidents ``flt`` selects, grouped by ``level`` and ``period``. The report
    window defaults to the 30 days before ``flt.end`` (before now when it has no end)."""
    if level not in rules.STATS_LEVELS:
        raise StatsInputError("level", f"unknown level {level!r}; levels: {', '.join(rules.STATS_LEVELS)}")
    if period not in rules.STATS_PERIODS:
        raise StatsInputError("period", f"unknown period {period!r}; periods: {', '.join(rules.STATS_PERIODS)}")
    flt = flt or IncidentFilter()
    now = now or dt.datetime.now(dt.UTC)
    end = flt.end or now
    try:
        start = flt.start or end - DEFAULT_RANGE
    except OverflowError:
        raise StatsInputError("end", f"{end.isoformat()} is too early for a default start; give start") from None
    flt = flt.replace(start=start, end=end)  # checks that the window is not empty
    where, params = flt.where("i", now="now")
    params |= {"period": period, "now": now, "level": level}
    sql = f"""
        SELECT s.*, a.name AS area_name FROM (
            SELECT CAST(date_trunc(:period, i.reported_at AT TIME ZONE '{COUNTY_TZ_NAME}') AS date) AS period_start,
                   i.{level}_code AS area_code,
                   count(*) AS total,
                   count(*) FILTER (WHERE i.status = 'closed') AS closed,
                   count(*) FILTER (WHERE i.status = 'rejected') AS rejected,
                   {p.backlog_counts("i", "now")},
                   sum(extract(epoch FROM i.closed_at - i.reported_at) / 3600.0)
                       FILTER (WHERE i.status = 'closed') AS handling_hours
            FROM incidents i
            WHERE {where}
            GROUP BY 1, 2) s
        LEFT JOIN areas a ON a.layer = :level AND a.code = s.area_code AND {p.is_current("a")}
        ORDER BY s.period_start, s.area_code NULLS LAST
    """  # noqa: S608 - level and period are checked against fixed lists above
    rows = []
    sums = dict.fromkeys(COUNTS, 0)
    hours_total = 0.0
    for r in conn.execute(sa.text(sql), params).mappings():
        hours = float(r["handling_hours"]) if r["handling_hours"] is not None else None
        rows.append(
            {
                "period_start": r["period_start"],
                "area_code": r["area_code"],
                "area_name": r["area_name"],
                **{key: r[key] for key in COUNTS},
                "closure_rate": _rate(r["closed"], r["total"], r["rejected"]),
                "mean_handling_hours": _mean(hours, r["closed"]),
            }
        )
        for key in sums:
            sums[key] += int(r[key])
        hours_total += hours or 0.0
    totals = {
        **sums,
        "closure_rate": _rate(sums["closed"], sums["total"], sums["rejected"]),
        "mean_handling_hours": _mean(hours_total, sums["closed"]),
    }
    return {"level": level, "period": period, "start": start, "end": end, "totals": totals, "rows": rows}
