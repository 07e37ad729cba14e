"""Assessment schemes (考核方案): per county and year, in versions, a list of weighted indicators,
each normalised to a 0-100 score by its own target and floor.

An indicator entry is ``{"name", "weight", "target", "floor"}``: ``name`` one of ``INDICATORS``,
weights positive and summing to 100. The score of a raw value ``v`` is linear between the floor
(0 points) and the target (100 points), clamped to [0, 100]; the direction follows from the two
numbers: ``target > floor`` means higher is better (rates), ``target < floor`` lower is better
(counts such as overdue incidents). A raw value that cannot be computed (no rows: no callbacks,
no hazard due) leaves the indicator out of that person's or grid's total, and the other weights
count in proportion (the total is the weighted mean of the scores there are).

Versions: a new version of a year applies to the months not over yet. The months already over
are first pinned (``assessment_periods``) to the version they were scored under, so a new version
never changes a past score's basis; every result names the version it used. With no version
stored for a year, the built-in ``DEFAULT_INDICATORS`` (version 0) stand in; the first stored
version then applies to the whole year.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.analysis.periods import next_start, period_of
from gis.core import audit
from gis.core.vocab import COUNTY_TZ
from gis.spatial.areas import Conn

LEVELS = ("person", "grid")
MAX_ADJUSTMENT = 10.0  # the default bound of manual points per person or grid and month


class AssessmentInputError(ValueError):
    """A value is unusable; ``field`` and ``value`` name it (the API answers 422)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={str(value)[:60]!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class AssessmentNotFound(LookupError):
    """No such person, grid or scheme, or outside the caller's scope (404)."""

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"{field}={str(value)[:60]!r}: not found")
        self.field = field
        self.value = value


@dataclass(frozen=True)
class Indicator:
    name: str
    label: str
    unit: str  # rate (0..1) or count
    definition: str


INDICATORS: tuple[Indicator, ...] = (
    Indicator("visits", "走访完成率", "rate",
              "household visits made in the month / (the visit quota a day x the days of the month begun); "
              "for a grid, the quota of each grid worker posted to it; people with no grid_worker posting "
              "have no value"),
    Indicator("valid_reports", "有效上报率", "rate",
              "incidents reported in the month by the person's accounts (the 'report' event) that were not "
              "rejected / all they reported; for a grid, such reports located in it"),
    Indicator("on_time", "按时办结率", "rate",
              "the KPI on_time_rate (gis.analysis.kpis) of the month's incidents, per lead holder or grid"),
    Indicator("returned", "核查退回", "count",
              "verifications failed in the month (handled sent back to in_progress) of incidents the person "
              "leads (latest lead assignment), or located in the grid"),
    Indicator("overdue", "超期件数", "count",
              "incidents reported in the month that are overdue now (gis.core.predicates.is_overdue), per "
              "lead holder or grid"),
    Indicator("hazards_on_time", "隐患按期整改率", "rate",
              "hazards whose rectification deadline fell in the month (and has passed, or was met) rectified "
              "by it / those hazards; a person's are those found by their inspections or reported by them"),
    Indicator("inspection_coverage", "巡检覆盖率", "rate",
              "buildings inspected in the month / buildings due in it (inspected in it, next inspection due "
              "by its last day, or rental and never inspected), in the grid or the person's posted grids"),
    Indicator("satisfaction", "满意率", "rate",
              "the KPI satisfaction_rate (gis.analysis.kpis) of the month's incidents, per lead holder or grid"),
    Indicator("settled_unescalated", "未升级化解率", "rate",
              "1 - the KPI escalation_rate (gis.analysis.kpis): share of the month's accepted incidents never "
              "escalated above the grid"),
)  # fmt: skip
INDICATOR_NAMES = tuple(i.name for i in INDICATORS)
BY_NAME = {i.name: i for i in INDICATORS}

DEFAULT_INDICATORS: tuple[dict[str, Any], ...] = (
    {"name": "visits", "weight": 15, "target": 1.0, "floor": 0.5},
    {"name": "valid_reports", "weight": 10, "target": 0.95, "floor": 0.6},
    {"name": "on_time", "weight": 15, "target": 0.98, "floor": 0.7},
    {"name": "returned", "weight": 10, "target": 0, "floor": 5},
    {"name": "overdue", "weight": 10, "target": 0, "floor": 5},
    {"name": "hazards_on_time", "weight": 10, "target": 1.0, "floor": 0.6},
    {"name": "inspection_coverage", "weight": 10, "target": 1.0, "floor": 0.5},
    {"name": "satisfaction", "weight": 10, "target": 0.98, "floor": 0.8},
    {"name": "settled_unescalated", "weight": 10, "target": 0.95, "floor": 0.7},
)

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(text: object, field: str = "period") -> dt.date:
    """The first day of the month ``YYYY-MM``."""
    m = _MONTH.match(text) if isinstance(text, str) else None
    if m is None or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 2100:
        raise AssessmentInputError(field, text, "is not a month YYYY-MM (years 2000-2100)")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def month_window(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the month in county time (the one calendar rule, gis.analysis.periods)."""
    return period_of(month, "month")


def _number(raw: object, field: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise AssessmentInputError(field, raw, "is not a number")
    return float(raw)


def check_indicators(raw: object) -> list[dict[str, Any]]:
    """The indicator list of a scheme, checked (errors name ``indicators[i].field``)."""
    if not isinstance(raw, list) or not raw:
        raise AssessmentInputError("indicators", raw, "must be a non-empty list of {name, weight, target, floor}")
    out: list[dict[str, Any]] = []
    for n, item in enumerate(raw):
        where = f"indicators[{n}]"
        if not isinstance(item, dict):
            raise AssessmentInputError(where, item, "must be an object {name, weight, target, floor}")
        extra = sorted(set(item) - {"name", "weight", "target", "floor"})
        if extra:
            raise AssessmentInputError(f"{where}.{extra[0]}", item[extra[0]], "is not a field of an indicator")
        name = item.get("name")
        if name not in BY_NAME:
            raise AssessmentInputError(f"{where}.name", name, f"is not one of {', '.join(INDICATOR_NAMES)}")
        if any(o["name"] == name for o in out):
            raise AssessmentInputError(f"{where}.name", name, "appears twice")
        weight = _number(item.get("weight"), f"{where}.weight")
        if weight <= 0:
            raise AssessmentInputError(f"{where}.weight", weight, "must be positive")
        target = _number(item.get("target"), f"{where}.target")
        floor = _number(item.get("floor"), f"{where}.floor")
        if target == floor:
            raise AssessmentInputError(f"{where}.floor", floor, f"must differ from the target {target}")
        if BY_NAME[name].unit == "rate":
            for field, value in (("target", target), ("floor", floor)):
                if not 0 <= value <= 1:
                    raise AssessmentInputError(f"{where}.{field}", value, "is a rate: between 0 and 1")
        elif min(target, floor) < 0:
            raise AssessmentInputError(f"{where}.target", target, "a count's target and floor are not negative")
        out.append({"name": name, "weight": weight, "target": target, "floor": floor})
    total = sum(i["weight"] for i in out)
    if abs(total - 100) > 1e-6:
        raise AssessmentInputError("indicators.weight", round(total, 6), "the weights must sum to 100")
    return out


def normalise(value: float | None, target: float, floor: float) -> float | None:
    """The 0-100 score of ``value``: 0 at the floor, 100 at the target, linear between, clamped."""
    if value is None:
        return None
    share = (value - floor) / (target - floor)
    return round(100 * min(1.0, max(0.0, share)), 2)


def county_code(conn: Conn) -> str:
    """The county of the boundaries in force (its six-digit code)."""
    code = conn.execute(
        # Several counties (issue #20): the home county's scheme until schemes are per caller's county.
        sa.text(
            "SELECT left(code, 6) FROM areas WHERE gen_to IS NULL AND layer IN ('county', 'town') "
            "ORDER BY left(code, 6) = gridmap_home_county() DESC, code LIMIT 1"
        )
    ).scalar()
    if code is None:
        raise AssessmentNotFound("county", "no boundaries are published")
    return str(code)


_COLUMNS = "id, county_code, year, version, indicators, max_adjustment, note, created_by, created_at"


def _row(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    d["max_adjustment"] = float(d["max_adjustment"])
    return d


def default_scheme(county: str, year: int) -> dict[str, Any]:
    return {
        "id": None,
        "county_code": county,
        "year": year,
        "version": 0,
        "indicators": [dict(i) for i in DEFAULT_INDICATORS],
        "max_adjustment": MAX_ADJUSTMENT,
        "note": "built-in default (no version stored for this year)",
        "created_by": None,
        "created_at": None,
    }


def latest(conn: Conn, county: str, year: int) -> dict[str, Any] | None:
    row = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM assessment_schemes WHERE county_code = :c AND year = :y "  # noqa: S608
                "ORDER BY version DESC LIMIT 1"),
        {"c": county, "y": year},
    ).first()  # fmt: skip
    return _row(row) if row is not None else None


def list_schemes(conn: Conn, county: str, year: int | None = None) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM assessment_schemes WHERE county_code = :c "  # noqa: S608
                "AND (CAST(:y AS int) IS NULL OR year = :y) ORDER BY year, version"),
        {"c": county, "y": year},
    ).all()  # fmt: skip
    return [_row(r) for r in rows]


def get_scheme(conn: Conn, scheme_id: int) -> dict[str, Any]:
    """One stored version, with the months pinned to it."""
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM assessment_schemes WHERE id = :id"), {"id": scheme_id}).first()  # noqa: S608
    if row is None:
        raise AssessmentNotFound("scheme_id", scheme_id)
    months = conn.execute(
        sa.text("SELECT month FROM assessment_periods WHERE scheme_id = :id ORDER BY month"), {"id": scheme_id}
    ).scalars()
    return {**_row(row), "pinned_months": [m.strftime("%Y-%m") for m in months]}


def scheme_for(conn: Conn, county: str, month: dt.date) -> dict[str, Any]:
    """The version a month is scored under: the one it was pinned to, else the newest of its year
    (else the built-in default)."""
    pinned = conn.execute(
        sa.text("SELECT scheme_id FROM assessment_periods WHERE county_code = :c AND month = :m"),
        {"c": county, "m": month},
    ).first()
    if pinned is not None:
        row = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM assessment_schemes WHERE id = :id"),  # noqa: S608
            {"id": pinned.scheme_id},
        ).one()
        return _row(row)
    return latest(conn, county, month.year) or default_scheme(county, month.year)


def _pin_past_months(conn: Conn, county: str, year: int, actor: str, now: dt.datetime) -> None:
    """Pin each month of ``year`` already over (and not pinned) to the version it was scored under.
    Before the first stored version nothing is pinned: the built-in default only stands in until
    the year has a scheme, and the first version is the year's from January."""
    current = latest(conn, county, year)
    if current is None:
        return
    month = dt.date(year, 1, 1)
    while month.year == year and month_window(month)[1] <= now:
        conn.execute(
            sa.text(
                "INSERT INTO assessment_periods (county_code, month, scheme_id, pinned_by) VALUES (:c, :m, :s, :a) "
                "ON CONFLICT (county_code, month) DO NOTHING"
            ),
            {"c": county, "m": month, "s": current["id"], "a": actor},
        )
        month = next_start(month, "month")


def create_scheme(conn: Conn, data: dict[str, Any], actor: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """A new version of the scheme of ``data['year']`` (the county in force unless ``county`` is
    given); the months of that year already over keep the version they were scored under."""
    now = now or dt.datetime.now(dt.UTC)
    extra = sorted(set(data) - {"county", "year", "indicators", "max_adjustment", "note"})
    if extra:
        raise AssessmentInputError(extra[0], data[extra[0]], "is not a field of a scheme")
    year = data.get("year")
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2100:
        raise AssessmentInputError("year", year, "is not a year between 2000 and 2100")
    county = data.get("county") or county_code(conn)
    if not isinstance(county, str) or not re.fullmatch(r"\d{6}", county):
        raise AssessmentInputError("county", county, "is not a six-digit county code")
    indicators = check_indicators(data.get("indicators"))
    max_adj = _number(data.get("max_adjustment", MAX_ADJUSTMENT), "max_adjustment")
    if not 0 <= max_adj <= 100:
        raise AssessmentInputError("max_adjustment", max_adj, "must be between 0 and 100 points")
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise AssessmentInputError("note", note, "must be text of at most 2000 characters")
    # One writer at a time per county and year: the version numbers and the pins stay in order.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('assessment_schemes:' || :c || ':' || :y))"),
                 {"c": county, "y": str(year)})  # fmt: skip
    _pin_past_months(conn, county, year, actor, now)
    row = conn.execute(
        sa.text(
            "INSERT INTO assessment_schemes (county_code, year, version, indicators, max_adjustment, note, "  # noqa: S608
            "created_by, created_at) SELECT CAST(:c AS varchar), CAST(:y AS smallint), coalesce(max(version), 0) + 1, "
            f"CAST(:ind AS jsonb), :mx, :n, :a, :now FROM assessment_schemes WHERE county_code = CAST(:c AS varchar) "
            f"AND year = CAST(:y AS smallint) RETURNING {_COLUMNS}"
        ),
        {"c": county, "y": year, "ind": json.dumps(indicators), "mx": max_adj, "n": note, "a": actor, "now": now},
    ).one()
    out = _row(row)
    audit.record(conn, actor, "assessment.scheme", f"assessment-scheme/{out['id']}", county=county, year=year,
                 version=out["version"], indicators=indicators, max_adjustment=max_adj)  # fmt: skip
    return out


def today_month() -> dt.date:
    return dt.datetime.now(COUNTY_TZ).date().replace(day=1)
