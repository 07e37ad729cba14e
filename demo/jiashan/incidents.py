"""One year of synthetic incidents (事件), generated vectorized with numpy.

``INCIDENT_CATEGORIES`` and ``INCIDENT_SOURCES`` are the product's code
tables: the four big risks (四大风险: stability, conflicts/homicide
prevention, fire, production safety) plus everyday matters.  Incidents
cluster around rental villages, industrial parks, markets and town centres,
follow people (random buildings) elsewhere, and have a daily and weekly
rhythm that depends on who reports them (demo.jiashan.rhythm).  Handling
deadlines are the product's (gis.incidents.rules), so the demo's overdue
incidents are the ones the product would call overdue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon

from demo.jiashan.rhythm import draw_times
from gis.incidents.rules import deadline_hours as rule_deadline_hours

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BIG_RISKS: dict[str, str] = {
    "stability": "信访维稳",
    "conflict": "矛盾纠纷/命案防控",
    "fire": "消防安全",
    "production_safety": "安全生产",
}
INCIDENT_SOURCES: dict[str, str] = {
    "grid_patrol": "网格员巡查",
    "resident_app": "群众上报",
    "hotline_110": "110警情",
    "hotline_12345": "12345热线",
}
INCIDENT_STATUSES = ("reported", "accepted", "dispatched", "in_progress", "handled", "verified", "closed")
CLOSURE_RATE = 0.993
OUTSIDE_SHARE = 0.001
DEFAULT_INCIDENTS = 282_347
_ID_PREFIX = {"grid_patrol": "WG", "resident_app": "QZ", "hotline_110": "JQ", "hotline_12345": "RX"}


@dataclass(frozen=True)
class IncidentCategory:
    code: str
    label: str
    big_risk: str | None  # a BIG_RISKS key, None for everyday matters
    weight: float  # relative yearly volume
    sources: tuple[float, float, float, float]  # relative mix, in INCIDENT_SOURCES order

    @property
    def deadline_hours(self) -> float:
        """Time allowed to handle it: the product's default for the category."""
        return rule_deadline_hours(self.code)


INCIDENT_CATEGORIES: tuple[IncidentCategory, ...] = (
    IncidentCategory("petition", "信访诉求", "stability", 4.0, (0.25, 0.10, 0.05, 0.60)),
    IncidentCategory("mass_gathering", "群体性事件苗头", "stability", 0.6, (0.55, 0.05, 0.30, 0.10)),
    IncidentCategory("family_conflict", "婚姻家庭纠纷", "conflict", 5.0, (0.35, 0.10, 0.45, 0.10)),
    IncidentCategory("dispute", "邻里纠纷", "conflict", 7.5, (0.45, 0.15, 0.25, 0.15)),
    IncidentCategory("labour_dispute", "劳资纠纷", "conflict", 4.0, (0.30, 0.10, 0.15, 0.45)),
    IncidentCategory("land_dispute", "土地宅基地纠纷", "conflict", 1.5, (0.55, 0.10, 0.05, 0.30)),
    IncidentCategory("mental_health_risk", "易肇事肇祸精神障碍患者", "conflict", 0.8, (0.60, 0.05, 0.30, 0.05)),
    IncidentCategory("fire", "消防隐患", "fire", 6.0, (0.70, 0.15, 0.05, 0.10)),
    IncidentCategory("fire_outbreak", "火情火灾", "fire", 0.5, (0.10, 0.10, 0.80, 0.00)),
    IncidentCategory("ebike_charging", "电动车违规充电", "fire", 3.0, (0.70, 0.20, 0.02, 0.08)),
    IncidentCategory("production_safety", "安全生产隐患", "production_safety", 3.5, (0.70, 0.10, 0.05, 0.15)),
    IncidentCategory("hazardous_chemicals", "危化品隐患", "production_safety", 0.6, (0.65, 0.05, 0.20, 0.10)),
    IncidentCategory("public_order", "治安问题", None, 6.0, (0.30, 0.15, 0.50, 0.05)),
    IncidentCategory("theft", "盗窃", None, 3.0, (0.05, 0.15, 0.75, 0.05)),
    IncidentCategory("fraud", "电信网络诈骗", None, 1.5, (0.05, 0.15, 0.70, 0.10)),
    IncidentCategory("environment", "环境卫生", None, 15.0, (0.60, 0.20, 0.00, 0.20)),
    IncidentCategory("pollution", "环境污染", None, 2.5, (0.35, 0.20, 0.05, 0.40)),
    IncidentCategory("illegal_construction", "违章搭建", None, 3.5, (0.65, 0.15, 0.00, 0.20)),
    IncidentCategory("traffic", "交通秩序", None, 6.0, (0.35, 0.15, 0.35, 0.15)),
    IncidentCategory("road_facility", "道路设施损坏", None, 4.0, (0.50, 0.20, 0.00, 0.30)),
    IncidentCategory("noise", "噪音扰民", None, 3.5, (0.15, 0.25, 0.35, 0.25)),
    IncidentCategory("rental_management", "出租房屋管理", None, 4.0, (0.80, 0.10, 0.02, 0.08)),
    IncidentCategory("public_service", "民生服务诉求", None, 6.0, (0.30, 0.25, 0.00, 0.45)),
)

# Where incidents happen, with each place's share and the categories it boosts.
LOCATION_CLASSES: dict[str, tuple[float, dict[str, float]]] = {
    "rental_village": (
        0.12,
        {
            "rental_management": 4.0,
            "fire": 2.5,
            "ebike_charging": 3.0,
            "public_order": 2.0,
            "dispute": 1.5,
            "family_conflict": 1.3,
            "theft": 1.5,
        },
    ),
    "industrial_park": (
        0.10,
        {"production_safety": 5.0, "hazardous_chemicals": 5.0, "labour_dispute": 3.0, "fire": 2.0, "pollution": 2.0},
    ),
    "market": (0.08, {"traffic": 2.0, "environment": 2.0, "theft": 2.0, "noise": 1.5}),
    "town_centre": (0.15, {"traffic": 1.8, "noise": 1.5, "public_service": 1.3, "petition": 1.5}),
    "population": (0.50, {}),
    "background": (0.05, {}),
}


@dataclass(frozen=True)
class Hotspots:
    """Cluster centres (EPSG:4549) by location class, each with a weight and a spread (m)."""

    centres: dict[str, FloatArray]  # class -> (k, 2)
    weights: dict[str, FloatArray]  # class -> (k,)
    sigma: dict[str, float]


def category_table() -> pd.DataFrame:
    """The category codes as a DataFrame (code, label, big_risk, big_risk_label, deadline_hours)."""
    return pd.DataFrame(
        {
            "code": [c.code for c in INCIDENT_CATEGORIES],
            "label": [c.label for c in INCIDENT_CATEGORIES],
            "big_risk": [c.big_risk for c in INCIDENT_CATEGORIES],
            "big_risk_label": [BIG_RISKS.get(c.big_risk or "") for c in INCIDENT_CATEGORIES],
            "deadline_hours": [c.deadline_hours for c in INCIDENT_CATEGORIES],
        }
    )


def _category_odds(boost: dict[str, float]) -> FloatArray:
    odds = np.array([c.weight * boost.get(c.code, 1.0) for c in INCIDENT_CATEGORIES])
    return odds / odds.sum()


def _inside(county: MultiPolygon, xy: FloatArray) -> npt.NDArray[np.bool_]:
    return np.asarray(shapely.contains_xy(county, xy[:, 0], xy[:, 1]))


def _place(
    klass: npt.NDArray[np.int64],
    hotspots: Hotspots,
    buildings_xy: FloatArray,
    building_weight: FloatArray,
    county: MultiPolygon,
    rng: np.random.Generator,
) -> FloatArray:
    """Points for each row's location class, all inside the county."""
    names = list(LOCATION_CLASSES)
    xy = np.empty((len(klass), 2))
    pending = np.arange(len(klass))
    minx, miny, maxx, maxy = county.bounds
    for _ in range(60):
        for k, name in enumerate(names):
            rows = pending[klass[pending] == k]
            if not len(rows):
                continue
            if name == "background":
                xy[rows] = np.column_stack([rng.uniform(minx, maxx, len(rows)), rng.uniform(miny, maxy, len(rows))])
            elif name == "population":
                pick = rng.choice(len(buildings_xy), len(rows), p=building_weight)
                xy[rows] = buildings_xy[pick] + rng.normal(0.0, 25.0, (len(rows), 2))
            else:
                w = hotspots.weights[name]
                pick = rng.choice(len(w), len(rows), p=w / w.sum())
                xy[rows] = hotspots.centres[name][pick] + rng.normal(0.0, hotspots.sigma[name], (len(rows), 2))
        pending = pending[~_inside(county, xy[pending])]
        if not len(pending):
            return xy
    # Clusters hugging the border can keep missing; fall back on buildings.
    xy[pending] = buildings_xy[rng.choice(len(buildings_xy), len(pending), p=building_weight)]
    return xy


def _push_outside(county: MultiPolygon, count: int, rng: np.random.Generator) -> FloatArray:
    """Points 5-40 m outside the county edge, as GPS noise at the border would give."""
    if count <= 0:  # fewer than 500 incidents: none outside (and nothing to concatenate)
        return np.empty((0, 2))
    ring = max(shapely.get_parts(county), key=lambda p: p.area).exterior
    out: list[FloatArray] = []
    have = 0
    while have < count:
        base = shapely.get_coordinates(shapely.line_interpolate_point(ring, rng.uniform(0, ring.length, 2 * count)))
        angle = rng.uniform(0, 2 * np.pi, len(base))
        reach = rng.uniform(5.0, 40.0, len(base))
        pts = base + np.column_stack([np.cos(angle), np.sin(angle)]) * reach[:, None]
        pts = pts[~_inside(county, pts)]
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:count]


def generate_incidents(
    count: int,
    county: MultiPolygon,
    hotspots: Hotspots,
    buildings_xy: FloatArray,
    building_weight: FloatArray,
    reference: pd.Timestamp,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """``count`` incidents over the 365 days ending at ``reference`` (the moment the demo is
    seeded: the last hours are as busy as their hour of day, and their incidents still open);
    x/y in EPSG:4549.

    Columns: external_id, source, category, status, reported_at, deadline_at,
    closed_at, x, y, _gen_location.
    """
    if count < 0:
        raise ValueError(f"incident count must be >= 0, got {count}")
    if reference.tzinfo is None:
        raise ValueError(f"reference must be timezone-aware, got {reference!r}")
    shapely.prepare(county)
    names = list(LOCATION_CLASSES)
    class_share = np.array([LOCATION_CLASSES[n][0] for n in names])
    klass = rng.choice(len(names), count, p=class_share / class_share.sum())

    category = np.empty(count, dtype=np.int64)
    for k, name in enumerate(names):
        rows = np.flatnonzero(klass == k)
        category[rows] = rng.choice(len(INCIDENT_CATEGORIES), len(rows), p=_category_odds(LOCATION_CLASSES[name][1]))

    source_codes = list(INCIDENT_SOURCES)
    source = np.empty(count, dtype=np.int64)
    for c, cat in enumerate(INCIDENT_CATEGORIES):
        rows = np.flatnonzero(category == c)
        mix = np.array(cat.sources)
        source[rows] = rng.choice(len(source_codes), len(rows), p=mix / mix.sum())

    ref_s = int(reference.timestamp())
    first_s = int((reference - pd.Timedelta(days=365)).timestamp())
    reported_s = np.empty(count, dtype=np.int64)
    for s, code in enumerate(source_codes):
        rows = np.flatnonzero(source == s)
        reported_s[rows] = draw_times(code, len(rows), first_s, ref_s, reference.tz, rng)

    xy = _place(klass, hotspots, buildings_xy, building_weight, county, rng)
    outside = rng.choice(count, int(round(count * OUTSIDE_SHARE)), replace=False)
    xy[outside] = _push_outside(county, len(outside), rng)

    deadline_h = np.array([c.deadline_hours for c in INCIDENT_CATEGORIES])[category]
    deadline_s = reported_s + np.round(deadline_h * 3600).astype(np.int64)
    status, closed_s = _statuses(reported_s, deadline_s, ref_s, rng)

    # Chronological order; external ids count up per source.
    order = np.argsort(reported_s, kind="stable")
    source_o = source[order]
    by_source = np.argsort(source_o, kind="stable")
    seq = np.empty(count, dtype=np.int64)
    starts = np.searchsorted(source_o[by_source], np.arange(len(source_codes)))
    seq[by_source] = np.arange(count) - np.repeat(starts, np.bincount(source_o, minlength=len(source_codes)))
    prefixes = np.array([_ID_PREFIX[c] for c in source_codes], dtype=object)
    external_id = prefixes[source_o] + pd.Series(seq + 1).astype(str).str.zfill(8).to_numpy(dtype=object)

    tz = reference.tz
    closed_o = closed_s[order]
    return pd.DataFrame(
        {
            "external_id": external_id,
            "source": np.array(source_codes, dtype=object)[source_o],
            "category": np.array([c.code for c in INCIDENT_CATEGORIES], dtype=object)[category[order]],
            "status": np.array(INCIDENT_STATUSES, dtype=object)[status[order]],
            "reported_at": pd.to_datetime(reported_s[order], unit="s", utc=True).tz_convert(tz),
            "deadline_at": pd.to_datetime(deadline_s[order], unit="s", utc=True).tz_convert(tz),
            "closed_at": pd.to_datetime(np.where(closed_o >= 0, closed_o, np.nan), unit="s", utc=True).tz_convert(tz),
            "x": xy[order, 0],
            "y": xy[order, 1],
            "_gen_location": np.array(names, dtype=object)[klass[order]],
        }
    )


def _statuses(
    reported_s: IntArray, deadline_s: IntArray, ref_s: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Status index and closing time (-1 when open) for every incident.

    Past its deadline an incident is closed with probability ``CLOSURE_RATE``
    (exactly that share, rounded); a younger one is further along its cycle
    the more of its time has passed.
    """
    count = len(reported_s)
    closed_idx = len(INCIDENT_STATUSES) - 1
    due = np.flatnonzero(deadline_s <= ref_s)
    status = np.empty(count, dtype=np.int64)
    status[due] = closed_idx
    stuck = rng.choice(due, int(round(len(due) * (1 - CLOSURE_RATE))), replace=False)
    status[stuck] = rng.choice([3, 4, 5], len(stuck), p=[0.5, 0.3, 0.2])
    young = np.flatnonzero(deadline_s > ref_s)
    elapsed = (ref_s - reported_s[young]) / (deadline_s[young] - reported_s[young])
    score = np.clip(1.1 * elapsed + rng.uniform(-0.15, 0.45, len(young)), 0.0, 0.9999)
    status[young] = (score * len(INCIDENT_STATUSES)).astype(np.int64)

    allowed = deadline_s - reported_s
    took = allowed * rng.beta(2.0, 3.0, count)
    late = rng.random(count) < 0.03
    took = np.where(late, allowed * rng.uniform(1.0, 1.8, count), took)
    closed_s = np.minimum(reported_s + np.maximum(took, 60).astype(np.int64), ref_s)
    closed_s = np.where(status == closed_idx, closed_s, -1)
    return status, closed_s
