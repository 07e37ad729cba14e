"""The county's own KPIs of the incident loop (办结率, 按时办结率, 满意率, 小事不出村、大事不出镇 ...),
at any level and for any period, with the same filter as every other reader (``IncidentFilter``).

The cohort of a period is the incidents REPORTED in it (and selected by the filter); each KPI
below is a figure of that cohort as it stands now. One definition per KPI, in ``KPIS`` (the API
schema and the README print these texts):

"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.analysis.kpirows import CLOSE_LEVELS, Fetch, window_rows
from gis.analysis.periods import CALENDAR_PERIODS, PeriodError, period_of
from gis.core.predicates import is_current
from gis.core.vocab import ASSIGNED_LAYERS
from gis.incidents.filter import IncidentFilter
from gis.spatial.areas import Conn

# Levels a KPI table can be grouped by: none (the whole selection), an assigned area layer, the
# organisation unit or the person leading the incident (its latest lead assignment).
GROUPS = ("county", *ASSIGNED_LAYERS, "org_unit", "person")
PERIODS = CALENDAR_PERIODS
# CLOSE_LEVELS (kpirows; callers import it from here): the levels at which an incident can be
# closed, bottom up; "settled at town or below" is the share of the first three (小事不出村、大事不出镇).
CALLBACK_RESULTS = ("satisfied", "basically_satisfied", "dissatisfied")


@dataclass(frozen=True)
class Kpi:
    name: str
    label: str  # the county's word for it
    unit: str  # rate (0..1), minutes, hours, count
    definition: str


KPIS: tuple[Kpi, ...] = (
    Kpi("reported", "受理量", "count", "incidents reported in the period (the cohort)"),
    Kpi("rejected", "不予立案", "count", "of the cohort, not accepted into the loop (rejected)"),
    Kpi("closed", "办结量", "count", "of the cohort, closed by now"),
    Kpi("closure_rate", "办结率", "rate", "closed / (reported - rejected)"),
    Kpi(
        "on_time_rate",
        "按时办结率",
        "rate",
        "closed no later than the handling deadline in force when it closed / closed (an overdue incident "
        "escalated to the next level gets that level's deadline, as the escalation ladder sets it)",
    ),
    Kpi("accept_p50_min", "响应时长中位数", "minutes", "median of accepted_at - reported_at, over accepted incidents"),
    Kpi("accept_p90_min", "响应时长P90", "minutes", "90th percentile of accepted_at - reported_at"),
    Kpi("arrive_p50_min", "到场时长中位数", "minutes", "median of on_scene_at - reported_at, over arrivals"),
    Kpi("arrive_p90_min", "到场时长P90", "minutes", "90th percentile of on_scene_at - reported_at"),
    Kpi("handle_p50_h", "处置时长中位数", "hours", "median of handled_at - reported_at, over handled incidents"),
    Kpi("handle_p90_h", "处置时长P90", "hours", "90th percentile of handled_at - reported_at"),
    *(
        Kpi(f"closed_at_{level}", f"{label}办结", "count", f"closed incidents whose closing level was {level}")
        for level, label in zip(CLOSE_LEVELS, ("网格", "村社区", "镇街", "县级"), strict=True)
    ),
    Kpi(
        "settled_in_town_rate",
        "镇街以下化解率",
        "rate",
        "closed at grid, village or town level / closed with a known closing level (小事不出村、大事不出镇)",
    ),
    Kpi("escalation_rate", "上报升级率", "rate", "escalated above the grid at least once / (reported - rejected)"),
    Kpi("reopen_rate", "重办率", "rate", "reopened at least once (a dissatisfied callback) / (reported - rejected)"),
    Kpi("callbacks", "回访量", "count", "incidents with a callback result (the latest one counts)"),
    Kpi(
        "satisfaction_rate",
        "满意率",
        "rate",
        "(satisfied + basically satisfied) / incidents with a callback result, by each incident's latest result",
    ),
)
KPI_NAMES = tuple(k.name for k in KPIS)
RATES = {"closure_rate", "on_time_rate", "settled_in_town_rate", "escalation_rate", "reopen_rate", "satisfaction_rate"}

__doc__ = (__doc__ or "") + "\n".join(f"- ``{k.name}`` ({k.label}, {k.unit}): {k.definition}" for k in KPIS) + "\n"


class KpiInputError(ValueError):
    """A KPI request value is unusable; ``field`` and ``value`` name it (the API answers 422)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={str(value)[:60]!r}: {reason}")
        self.field = field
        self.value = value


def period_window(period: str, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The calendar day, ISO week, month or year (county time) that holds ``day`` (gis.analysis.periods)."""
    try:
        return period_of(day, period)
    except PeriodError:
        raise KpiInputError("period", period, f"is not one of {', '.join(PERIODS)}") from None


def _year_before(when: dt.datetime) -> dt.datetime:
    try:
        return when.replace(year=when.year - 1)
    except ValueError:  # 29 February
        return when.replace(year=when.year - 1, day=28)


def comparison_windows(start: dt.datetime, end: dt.datetime) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """The period, the one of the same length just before it, and the same dates a year earlier."""
    return {
        "current": (start, end),
        "previous": (start - (end - start), start),
        "last_year": (_year_before(start), _year_before(end)),
    }


# The lead holder of an incident: its latest lead assignment that was not withdrawn or declined.
_LEAD = """LEFT JOIN LATERAL (
        SELECT a.person_id, a.org_unit_id FROM incident_assignments a
        WHERE a.incident_id = i.id AND a.role = 'lead' AND a.kind = 'dispatch'
          AND a.state IN ('offered', 'accepted', 'done')
        ORDER BY a.offered_at DESC, a.id DESC LIMIT 1) lead ON TRUE"""


def _key(group: str) -> tuple[str, str, str | None]:
    """The grouping key's SQL, the join it needs and the SQL listing the keys it may take (all
    the layer's codes ever, the units, the people: a short read where finding the keys among the
    incidents would be another scan of the period; its value is bound as :kpi_layer)."""
    if group == "county":
        return "NULL", "", None
    if group in ASSIGNED_LAYERS:
        return f"i.{group}_code", "", "SELECT code FROM areas WHERE layer = :kpi_layer"
    if group == "org_unit":
        return "CAST(lead.org_unit_id AS text)", _LEAD, "SELECT CAST(id AS text) FROM org_units"
    if group == "person":
        return "CAST(lead.person_id AS text)", _LEAD, "SELECT CAST(id AS text) FROM people"
    raise KpiInputError("group_by", group, f"is not one of {', '.join(GROUPS)}")


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def figures(row: sa.RowMapping | dict[str, Any]) -> dict[str, Any]:
    """The KPIs (``KPI_NAMES``) from one row of the aggregate."""
    base = row["reported"] - row["rejected"]
    closed = row["closed"]
    known_level = sum(row[f"closed_at_{lv}"] for lv in CLOSE_LEVELS)
    out: dict[str, Any] = {"reported": row["reported"], "rejected": row["rejected"], "closed": closed}
    out["closure_rate"] = _ratio(closed, base)
    out["on_time_rate"] = _ratio(row["closed_on_time"], closed)
    for name in ("accept", "arrive", "handle"):
        pcts = row[f"{name}_pcts"] or [None, None]
        unit = "h" if name == "handle" else "min"
        out[f"{name}_p50_{unit}"], out[f"{name}_p90_{unit}"] = _round(pcts[0]), _round(pcts[1])
    for lv in CLOSE_LEVELS:
        out[f"closed_at_{lv}"] = row[f"closed_at_{lv}"]
    out["settled_in_town_rate"] = _ratio(known_level - row["closed_at_county"], known_level)
    out["escalation_rate"] = _ratio(row["escalated"], base)
    out["reopen_rate"] = _ratio(row["reopened"], base)
    out["callbacks"] = row["callbacks"]
    out["satisfaction_rate"] = _ratio(row["satisfied"], row["callbacks"])
    return out


def changes(current: dict[str, Any], other: dict[str, Any] | None) -> dict[str, float | None]:
    """current - other per KPI (rates in points of 0..1, times in their unit, counts as counts)."""
    if other is None:
        return dict.fromkeys(KPI_NAMES)
    out: dict[str, float | None] = {}
    for name in KPI_NAMES:
        a, b = current.get(name), other.get(name)
        out[name] = None if a is None or b is None else round(a - b, 4)
    return out


def _labels(conn: Conn, group: str, keys: list[str]) -> dict[str, str]:
    if not keys or group == "county":
        return {}
    if group in ASSIGNED_LAYERS:
        sql = f"SELECT code, name FROM areas WHERE layer = :layer AND code = ANY(:k) AND {is_current()}"  # noqa: S608
        params: dict[str, Any] = {"layer": group, "k": keys}
    elif group == "org_unit":
        sql, params = "SELECT CAST(id AS text), name FROM org_units WHERE id = ANY(CAST(:k AS int[]))", {"k": keys}
    else:
        sql, params = "SELECT CAST(id AS text), name FROM people WHERE id = ANY(CAST(:k AS bigint[]))", {"k": keys}
    return {str(k): str(n) for k, n in conn.execute(sa.text(sql), params).all()}


def compute_kpis(
    conn: Conn,
    flt: IncidentFilter,
    start: dt.datetime,
    end: dt.datetime,
    group_by: str = "county",
    fetch: Fetch | None = None,
) -> dict[str, Any]:
    """The KPIs of the incidents ``flt`` selects that were reported in [start, end), in total and
    per ``group_by`` key, each with its change against the previous period of the same length and
    against the same dates a year earlier. ``flt``'s own report window is replaced by these."""
    if start.tzinfo is None or end.tzinfo is None:
        raise KpiInputError("start", start, "must carry a time zone")
    if end <= start:
        raise KpiInputError("end", end.isoformat(), f"must be after start {start.isoformat()}")
    windows = comparison_windows(start, end)
    where, params = flt.replace(start=None, end=None, window=None).where("i")
    key, join, candidates = _key(group_by)
    rows = window_rows(conn, windows, key, join, where, {**params, "kpi_layer": group_by}, fetch, candidates)
    shaped: dict[int, dict[str, Any]] = {}  # identical windows share their row objects: shaped once
    for row in rows.values():
        if id(row) not in shaped:
            shaped[id(row)] = figures(row)
    by = {k: shaped[id(row)] for k, row in rows.items()}
    empty = figures(_EMPTY)

    def entry(key: str | None) -> dict[str, Any]:
        now_ = by.get(("current", key), empty)
        previous, last_year = by.get(("previous", key)), by.get(("last_year", key))
        vs_previous = changes(now_, previous)
        # For a calendar year the previous period is last year: the same figures, compared once.
        vs_last_year = dict(vs_previous) if last_year is previous else changes(now_, last_year)
        return {"kpis": now_, "vs_previous": vs_previous, "vs_last_year": vs_last_year}

    keys = sorted({k for (win, k) in by if win == "current" and k is not None})
    labels = _labels(conn, group_by, [k for k in keys if k])
    groups = [{"key": k or None, "name": labels.get(k), **entry(k)} for k in keys] if group_by != "county" else []
    return {
        "group_by": group_by,
        "windows": {name: {"start": ws.isoformat(), "end": we.isoformat()} for name, (ws, we) in windows.items()},
        "total": entry(None),
        "groups": groups,
        "definitions": {k.name: {"label": k.label, "unit": k.unit, "definition": k.definition} for k in KPIS},
    }


_EMPTY: dict[str, Any] = {
    "reported": 0,
    "rejected": 0,
    "closed": 0,
    "closed_on_time": 0,
    "accept_pcts": None,
    "arrive_pcts": None,
    "handle_pcts": None,
    **{f"closed_at_{lv}": 0 for lv in CLOSE_LEVELS},
    "escalated": 0,
    "reopened": 0,
    "callbacks": 0,
    "satisfied": 0,
}


def write_xlsx(data: dict[str, Any]) -> bytes:
    """The KPI table as a workbook: one row per group (the total first), a column per KPI with
    its changes against the previous period and last year; then the definitions."""
    import io

    import pandas as pd

    rows = []
    for name, entry in [("合计 total", data["total"]), *((g["name"] or g["key"] or "-", g) for g in data["groups"])]:
        row: dict[str, Any] = {"group": name}
        for kpi in KPIS:
            row[f"{kpi.label} {kpi.name}"] = entry["kpis"][kpi.name]
            row[f"{kpi.name} vs previous"] = entry["vs_previous"][kpi.name]
            row[f"{kpi.name} vs last year"] = entry["vs_last_year"][kpi.name]
        rows.append(row)
    windows = pd.DataFrame([{"window": k, **v} for k, v in data["windows"].items()])
    definitions = pd.DataFrame(
        [{"kpi": k.name, "label": k.label, "unit": k.unit, "definition": k.definition} for k in KPIS]
    )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame(rows).to_excel(writer, sheet_name="指标 KPIs", index=False)
        windows.to_excel(writer, sheet_name="时段 windows", index=False)
        definitions.to_excel(writer, sheet_name="口径 definitions", index=False)
    return buffer.getvalue()
