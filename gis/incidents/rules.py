"""Incident vocabulary and rules: categories, sources, statuses, the closed loop (事件闭环) and escalation.

This module is the single source of truth: intake, workflow, listing, statistics, the demo
generator and the maps all read their codes and labels from here. Codes are short snake_case
English; labels are Chinese (zh) and English (en).

Deadlines are handling deadlines (处置时限): the clock starts at ``reported_at`` and stops when the
incident is handled (处置完成). Defaults per category are below; deployments override them with the
``GRIDMAP_DEADLINE_HOURS`` setting, e.g. ``'{"fire": 2}'``. An overdue incident escalates one level
up (grid → village → town command centre → county centre) and gets the next level's deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from gis.core.vocab import COUNTY_TZ
from gis.core.vocab import FINAL_STATUSES as FINAL_STATUSES
from gis.core.vocab import OPEN_STATUSES as OPEN_STATUSES
from gis.core.vocab import PENDING_STATUSES as PENDING_STATUSES

# The county time zone under its older name, for the modules still importing it from here (the demo
# generator); gis.core.vocab.COUNTY_TZ is the one definition.
LOCAL_TZ = COUNTY_TZ


@dataclass(frozen=True)
class RiskGroup:
    code: str
    zh: str
    en: str
    big_risk: bool  # one of the four big risks (四大风险) watched by the command centre


RISK_GROUPS: dict[str, RiskGroup] = {
    g.code: g
    for g in (
        RiskGroup("stability", "信访维稳", "petitions and stability", True),
        RiskGroup("conflict", "矛盾纠纷·命案防控", "conflicts and homicide prevention", True),
        RiskGroup("fire", "消防安全", "fire safety", True),
        RiskGroup("production_safety", "安全生产", "production safety", True),
        RiskGroup("everyday", "日常事件", "everyday matters", False),
    )
}


@dataclass(frozen=True)
class Category:
    code: str
    zh: str
    en: str
    risk_group: str
    deadline_hours: float  # default; see ``deadline_hours`` for the configured value


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category("petition", "信访诉求", "petition", "stability", 72),
        Category("mass_gathering", "群体性聚集", "mass gathering", "stability", 2),
        Category("family_conflict", "婚恋家庭纠纷", "family or relationship conflict", "conflict", 24),
        Category("conflict_escalation", "矛盾激化风险", "conflict at risk of violence", "conflict", 6),
        Category("fire", "火灾隐患", "fire hazard", "fire", 4),
        Category("ebike_charging", "电动车违规充电", "illegal e-bike charging", "fire", 24),
        Category("production_safety", "安全生产隐患", "production safety hazard", "production_safety", 24),
        Category("hazardous_chemicals", "危化品隐患", "hazardous chemicals", "production_safety", 8),
        Category("dispute", "矛盾纠纷", "dispute (neighbours, labour, property)", "everyday", 72),
        Category("public_order", "治安问题", "public order", "everyday", 24),
        Category("environment", "环境卫生", "environment and sanitation", "everyday", 72),
        Category("traffic", "交通问题", "traffic", "everyday", 24),
        Category("illegal_construction", "违章搭建", "illegal construction", "everyday", 168),
        Category("labour_dispute", "劳资纠纷", "labour dispute", "conflict", 120),
        Category("land_dispute", "土地宅基地纠纷", "land or homestead dispute", "conflict", 168),
        Category("mental_health_risk", "易肇事肇祸精神障碍患者", "mental disorder, risk of harm", "conflict", 24),
        Category("fire_outbreak", "火情火灾", "fire outbreak", "fire", 2),
        Category("theft", "盗窃", "theft", "everyday", 48),
        Category("fraud", "电信网络诈骗", "telecom and online fraud", "everyday", 48),
        Category("pollution", "环境污染", "pollution", "everyday", 120),
        Category("road_facility", "道路设施损坏", "damaged road facility", "everyday", 120),
        Category("noise", "噪音扰民", "noise", "everyday", 48),
        Category("rental_management", "出租房屋管理", "rental housing management", "everyday", 120),
        Category("public_service", "民生服务诉求", "public service request", "everyday", 120),
        Category("other", "其他", "other", "everyday", 72),
    )
}

SOURCES: dict[str, tuple[str, str]] = {
    "grid_patrol": ("网格员巡查", "grid worker patrol"),
    "resident_app": ("居民APP", "residents' app"),
    "hotline_110": ("110报警", "110 police hotline"),
    "hotline_12345": ("12345热线", "12345 citizen hotline"),
    "other": ("其他", "other"),
}

STATUSES: dict[str, tuple[str, str]] = {
    "reported": ("上报", "reported"),
    "accepted": ("立案", "accepted"),
    "rejected": ("不予立案", "rejected"),
    "dispatched": ("派遣", "dispatched"),
    "in_progress": ("处置", "in progress"),
    "handled": ("处置完成", "handled"),
    "verified": ("核查", "verified"),
    "closed": ("结案", "closed"),
}

# The closed loop. A failed verification (核查不通过) sends a handled incident back to in_progress.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "reported": ("accepted", "rejected"),
    "accepted": ("dispatched",),
    "dispatched": ("in_progress",),
    "in_progress": ("handled",),
    "handled": ("verified", "in_progress"),
    "verified": ("closed",),
    "rejected": (),
    "closed": (),
}

# Reopening (重新办理) after a resident's dissatisfied rating: where a handled or ended matter goes
# back to. It is not a staff transition (not in TRANSITIONS): only the rating of the resident who
# reported it reopens a matter (gis.channels.ratings), recorded in the history as ``reopen``.
REOPEN: dict[str, str] = {
    "handled": "in_progress",
    "verified": "in_progress",
    "closed": "in_progress",
    "rejected": "reported",  # not taken up: the decision is reviewed again
}

# Verbs a client may use instead of the target status.
ACTIONS: dict[str, str] = {
    "accept": "accepted",
    "reject": "rejected",
    "dispatch": "dispatched",
    "start": "in_progress",
    "send_back": "in_progress",
    "handle": "handled",
    "verify": "verified",
    "close": "closed",
}

# The status sets (final, open, pending) are defined, with their meaning, in gis.core.vocab; duplicates
# are looked for among open incidents; only pending ones can be overdue or escalate.

ESCALATION_LEVELS: dict[str, tuple[str, str]] = {
    "grid": ("网格", "grid"),
    "village": ("村社区", "village or community"),
    "town": ("镇街综治中心", "town command centre"),
    "county": ("县社会治理中心", "county social governance centre"),
}
# The deadline a level gets when an incident is escalated to it: higher centres command more
# resources, so they are given less time.
ESCALATION_HOURS: dict[str, float] = {"village": 24, "town": 12, "county": 8}

STATS_LEVELS = ("town", "village", "grid")
STATS_PERIODS = ("day", "week", "month")


class RuleError(ValueError):
    """An unknown code; the message lists the accepted ones."""


def _check(kind: str, value: object, known: Mapping[str, object]) -> str:
    if not isinstance(value, str) or value not in known:
        raise RuleError(f"unknown {kind} {value!r}; accepted: {', '.join(known)}")
    return value


def check_category(value: object) -> str:
    return _check("category", value, CATEGORIES)


def check_source(value: object) -> str:
    return _check("source", value, SOURCES)


def check_status(value: object) -> str:
    return _check("status", value, STATUSES)


def check_deadline_overrides(overrides: Mapping[str, float]) -> dict[str, float]:
    """Validate a ``{category: hours}`` mapping (the GRIDMAP_DEADLINE_HOURS setting)."""
    out: dict[str, float] = {}
    for code, hours in overrides.items():
        check_category(code)
        if not isinstance(hours, int | float) or not 0 < float(hours) <= 24 * 365:
            raise RuleError(f"deadline for {code!r} must be a number of hours in (0, 8760], got {hours!r}")
        out[code] = float(hours)
    return out


def deadline_hours(category: str, overrides: Mapping[str, float] | None = None) -> float:
    check_category(category)
    if overrides and category in overrides:
        return float(overrides[category])
    return CATEGORIES[category].deadline_hours


def deadline_for(category: str, reported_at: dt.datetime, overrides: Mapping[str, float] | None = None) -> dt.datetime:
    return reported_at + dt.timedelta(hours=deadline_hours(category, overrides))


def resolve_action(action: str) -> str:
    """The target status of ``action`` (a verb such as ``accept`` or the status itself)."""
    if action in STATUSES:
        return action
    if action in ACTIONS:
        return ACTIONS[action]
    raise RuleError(f"unknown action {action!r}; actions: {', '.join([*ACTIONS, *STATUSES])}")


def next_level(level: str) -> str | None:
    """The escalation level above ``level``; None at the county centre, the top."""
    order = list(ESCALATION_LEVELS)
    i = order.index(_check("escalation level", level, ESCALATION_LEVELS))
    return order[i + 1] if i + 1 < len(order) else None


def category_info(code: str) -> dict[str, object]:
    c = CATEGORIES[check_category(code)]
    group = RISK_GROUPS[c.risk_group]
    return {
        "code": c.code,
        "zh": c.zh,
        "en": c.en,
        "risk_group": group.code,
        "risk_group_zh": group.zh,
        "big_risk": group.big_risk,
        "deadline_hours": c.deadline_hours,
    }
