"""The raw values of the assessment indicators (gis.assessment.scheme.INDICATORS) for a month,
per person or per grid: ``{indicator: {key: Raw}}`` with the key a person id (as text) or a grid
code. Definitions shared with other outputs are reused, not written again: the on-time,
satisfaction and escalation figures are the KPIs of gis.analysis.kpis (its cohort: incidents
reported in the month, as they stand now; a person is an incident's latest lead holder, the KPI
table's "person" grouping), overdue is gis.core.predicates.is_overdue, the month is the calendar
month of gis.analysis.periods.

A person's own work is found through their accounts (``accounts.person_id``: the actor of an
incident's ``report`` event, of a hazard report) and postings (an inspection's team).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.analysis.kpis import _LEAD, compute_kpis
from gis.analysis.periods import next_start
from gis.core.predicates import is_overdue
from gis.core.vocab import COUNTY_TZ
from gis.incidents.filter import IncidentFilter
from gis.spatial.areas import Conn

from .scheme import month_window


@dataclass(frozen=True)
class Raw:
    """A raw value with what it was computed from (``numerator`` / ``denominator`` for a rate)."""

    value: float | None
    numerator: float | None = None
    denominator: float | None = None


Values = dict[str, Raw]

# A posting in force at some time in the month [:first, :last].
_IN_FORCE = "p.starts_on <= :last AND (p.ends_on IS NULL OR p.ends_on >= :first)"


def _rate(num: float, den: float) -> Raw:
    return Raw(round(num / den, 4) if den else None, num, den)


def _key(level: str, person: str) -> str:
    return f"CAST({person} AS text)" if level == "person" else "i.grid_code"


def days_begun(month: dt.date, now: dt.datetime) -> int:
    """The days of the month that have begun by ``now`` (county time): a month under way asks
    only the quota of its days so far."""
    end = next_start(month, "month")
    today = now.astimezone(COUNTY_TZ).date()
    if today < month:
        return 0
    return (min(today + dt.timedelta(days=1), end) - month).days


def visits(conn: Conn, level: str, month: dt.date, params: dict[str, Any], quota: int, now: dt.datetime) -> Values:
    """Visits made against the quota: a grid worker's quota is ``quota`` a day; a grid's, that of
    each grid worker posted to it in the month."""
    group = "CAST(v.person_id AS text)" if level == "person" else "v.grid_code"
    made: dict[str, int] = dict(
        conn.execute(
            sa.text(f"SELECT {group}, count(*) FROM visits v WHERE v.at >= :s AND v.at < :e GROUP BY 1"),  # noqa: S608
            params,
        ).all()
    )
    owner = "CAST(p.person_id AS text)" if level == "person" else "p.area_code"
    layer = "TRUE" if level == "person" else "p.layer = 'grid'"
    workers: dict[str, int] = dict(
        conn.execute(
            sa.text(
                f"SELECT {owner}, count(DISTINCT p.person_id) FROM postings p WHERE p.role = 'grid_worker' "  # noqa: S608
                f"AND {layer} AND {_IN_FORCE} GROUP BY 1"
            ),
            params,
        ).all()
    )
    days = days_begun(month, now)
    keys = set(made) | set(workers)
    return {k: _rate(made.get(k, 0), quota * days * (1 if level == "person" else workers[k])) if k in workers
            else Raw(None, made.get(k, 0), None) for k in keys if k is not None}  # fmt: skip


def valid_reports(conn: Conn, level: str, params: dict[str, Any]) -> Values:
    rows = conn.execute(
        sa.text(
            f"SELECT {_key(level, 'ac.person_id')} AS key, count(*) FILTER (WHERE i.status <> 'rejected') AS num, "  # noqa: S608
            "count(*) AS den FROM incidents i "
            "JOIN incident_events e ON e.incident_id = i.id AND e.action = 'report' "
            "JOIN accounts ac ON ac.name = e.actor AND ac.person_id IS NOT NULL "
            "WHERE i.reported_at >= :s AND i.reported_at < :e GROUP BY 1"
        ),
        params,
    ).all()
    return {r.key: _rate(r.num, r.den) for r in rows if r.key is not None}


def returned(conn: Conn, level: str, params: dict[str, Any]) -> Values:
    """Failed verifications (核查退回: handled sent back to in_progress by staff, not a reopening)."""
    rows = conn.execute(
        sa.text(
            f"SELECT {_key(level, 'lead.person_id')} AS key, count(*) AS n FROM incident_events e "  # noqa: S608
            f"JOIN incidents i ON i.id = e.incident_id {_LEAD if level == 'person' else ''} "
            "WHERE e.at >= :s AND e.at < :e AND e.from_status = 'handled' AND e.to_status = 'in_progress' "
            "AND e.action <> 'reopen' GROUP BY 1"
        ),
        params,
    ).all()
    return {r.key: Raw(float(r.n)) for r in rows if r.key is not None}


def overdue(conn: Conn, level: str, params: dict[str, Any]) -> Values:
    rows = conn.execute(
        sa.text(
            f"SELECT {_key(level, 'lead.person_id')} AS key, count(*) FILTER (WHERE {is_overdue('i', 'now')}) AS n "  # noqa: S608
            f"FROM incidents i {_LEAD if level == 'person' else ''} "
            "WHERE i.reported_at >= :s AND i.reported_at < :e GROUP BY 1"
        ),
        params,
    ).all()
    return {r.key: Raw(float(r.n)) for r in rows if r.key is not None}


_HAZARDS_DUE = (
    "hz AS (SELECT h.id, h.grid_code, h.inspection_id, h.reported_by, "
    "h.rectified_at IS NOT NULL AND h.rectified_at <= h.rectify_by AS on_time FROM hazards h "
    "WHERE h.rectify_by >= :s AND h.rectify_by < :e AND (h.rectify_by <= :now OR h.rectified_at IS NOT NULL))"
)


def hazards_on_time(conn: Conn, level: str, params: dict[str, Any]) -> Values:
    if level == "grid":
        sql = (f"WITH {_HAZARDS_DUE} SELECT hz.grid_code AS key, count(*) FILTER (WHERE hz.on_time) AS num, "  # noqa: S608
               "count(*) AS den FROM hz GROUP BY 1")  # fmt: skip
    else:
        sql = (
            f"WITH {_HAZARDS_DUE}, who AS ("  # noqa: S608
            "SELECT hz.id, p.person_id FROM hz JOIN inspection_inspectors ii ON ii.inspection_id = hz.inspection_id "
            "JOIN postings p ON p.id = ii.posting_id "
            "UNION SELECT hz.id, ac.person_id FROM hz JOIN accounts ac ON ac.name = hz.reported_by "
            "AND ac.person_id IS NOT NULL) "
            "SELECT CAST(who.person_id AS text) AS key, count(*) FILTER (WHERE hz.on_time) AS num, count(*) AS den "
            "FROM who JOIN hz ON hz.id = who.id GROUP BY 1"
        )
    rows = conn.execute(sa.text(sql), params).all()
    return {r.key: _rate(r.num, r.den) for r in rows if r.key is not None}


_BUILDINGS_DUE = (
    "bd AS (SELECT b.id, b.grid_code, b.micro_grid_code, x.inspected, "
    "x.inspected OR b.next_inspection_on <= :last OR (b.is_rental AND b.last_inspected_at IS NULL) AS due "
    "FROM buildings b CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM inspections n WHERE n.building_id = b.id "
    "AND n.at >= :s AND n.at < :e) AS inspected) x)"
)


def inspection_coverage(conn: Conn, level: str, params: dict[str, Any]) -> Values:
    if level == "grid":
        sql = (f"WITH {_BUILDINGS_DUE} SELECT bd.grid_code AS key, count(*) FILTER (WHERE bd.inspected) AS num, "  # noqa: S608
               "count(*) FILTER (WHERE bd.due) AS den FROM bd GROUP BY 1")  # fmt: skip
    else:
        sql = (
            f"WITH {_BUILDINGS_DUE}, mine AS (SELECT DISTINCT p.person_id, bd.id, bd.inspected, bd.due FROM bd "  # noqa: S608
            f"JOIN postings p ON p.area_code IN (bd.grid_code, bd.micro_grid_code) AND {_IN_FORCE}) "
            "SELECT CAST(person_id AS text) AS key, count(*) FILTER (WHERE inspected) AS num, "
            "count(*) FILTER (WHERE due) AS den FROM mine GROUP BY 1"
        )
    rows = conn.execute(sa.text(sql), params).all()
    return {r.key: _rate(r.num, r.den) for r in rows if r.key is not None}


def from_kpis(conn: Conn, level: str, start: dt.datetime, end: dt.datetime) -> dict[str, Values]:
    """on_time, satisfaction and settled_unescalated from the county's KPI table (one definition)."""
    data = compute_kpis(conn, IncidentFilter(), start, end, group_by=level)
    out: dict[str, Values] = {"on_time": {}, "satisfaction": {}, "settled_unescalated": {}}
    for group in data["groups"]:
        key, k = group["key"], group["kpis"]
        if not key:
            continue
        out["on_time"][key] = Raw(k["on_time_rate"], None, k["closed"])
        out["satisfaction"][key] = Raw(k["satisfaction_rate"], None, k["callbacks"])
        base = k["reported"] - k["rejected"]
        esc = k["escalation_rate"]
        out["settled_unescalated"][key] = Raw(None if esc is None else round(1 - esc, 4), None, base)
    return out


# Counts: a person or grid with no rows has 0 (nothing overdue), not "no value".
COUNTS = ("returned", "overdue")


def compute(
    conn: Conn, level: str, month: dt.date, names: list[str], quota: int, now: dt.datetime
) -> dict[str, Values]:
    """The raw values of the indicators ``names`` for every person or grid with rows in ``month``."""
    start, end = month_window(month)
    last = next_start(month, "month") - dt.timedelta(days=1)
    params = {"s": start, "e": end, "first": month, "last": last, "now": now}
    out: dict[str, Values] = {}
    if {"on_time", "satisfaction", "settled_unescalated"} & set(names):
        out.update(from_kpis(conn, level, start, end))
    for name in names:
        if name == "visits":
            out[name] = visits(conn, level, month, params, quota, now)
        elif name == "valid_reports":
            out[name] = valid_reports(conn, level, params)
        elif name == "returned":
            out[name] = returned(conn, level, params)
        elif name == "overdue":
            out[name] = overdue(conn, level, params)
        elif name == "hazards_on_time":
            out[name] = hazards_on_time(conn, level, params)
        elif name == "inspection_coverage":
            out[name] = inspection_coverage(conn, level, params)
    return {name: out.get(name, {}) for name in names}
