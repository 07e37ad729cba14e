"""Inspections, hazards and campaigns as GeoJSON map layers (the command centre's and the grid
page's), in the display CRS of the map and inside the caller's scope:

* rental buildings by the risk level of their latest inspection (``none``: never inspected), by the
  time since that inspection (``AGE_CLASSES``) or by whether it is due (``DUE_CLASSES``: inspected
  within the interval of its risk level, overdue for inspection, never inspected);
* unrectified hazards with their status, overdue ones (gis.fieldwork.overdue) apart;
* a campaign's progress per grid (gis.fieldwork.campaigns) as a choropleth of the share of target
  buildings inspected, or of the hazards found rectified.

The building row carries its latest inspection's risk level and time (inspections.WRITE_SQL sets
them; file imports and the demo set them the same way), so one pass over ``buildings`` answers.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import numpy as np
import sqlalchemy as sa

from gis.core.vocab import COUNTY_TZ, COUNTY_TZ_NAME
from gis.fieldwork import campaigns
from gis.fieldwork.errors import FieldworkInputError
from gis.fieldwork.overdue import is_hazard_overdue
from gis.outputs.features import _display, check_display_crs
from gis.outputs.mapfilter import COORD_DECIMALS
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

RISK_CLASSES = ("high", "medium", "low", "none")
# Days since the latest inspection: below 30, 30-90, 90-180, over 180, never inspected.
AGE_LIMITS = (30, 90, 180)
AGE_CLASSES = ("lt30", "d30_90", "d90_180", "gt180", "never")
DUE_CLASSES = ("within", "overdue", "never")
BUILDING_VIEWS = {"risk": RISK_CLASSES, "age": AGE_CLASSES, "due": DUE_CLASSES}
MEASURES = ("inspected", "rectified")
# Share of a grid's campaign work done -> fill colour (red: little done; green: most done).
SHARE_RAMP = ((0.2, "#d7191c"), (0.4, "#fdae61"), (0.6, "#ffffbf"), (0.8, "#a6d96a"), (1.01, "#1a9641"))
NO_SHARE_COLOR = "#bdbdbd"  # a grid without targets (or without hazards to rectify)

# One row per rental building inside the scope: its classes by risk, age and due date. A building
# inspected without a risk level (an imported row) gets the longest interval: it is not called
# overdue on a guess. The due day is the one the latest inspection set, else computed the same way
# (county day of the inspection + the interval of its risk level).
_BUILDINGS = f"""
SELECT b.id, b.code, b.name, b.grid_code,
       CASE WHEN b.last_inspected_at IS NULL OR b.risk_level IS NULL THEN 'none' ELSE b.risk_level END AS risk,
       CASE WHEN b.last_inspected_at IS NULL THEN 'never'
            WHEN b.last_inspected_at >= :cut0 THEN 'lt30'
            WHEN b.last_inspected_at >= :cut1 THEN 'd30_90'
            WHEN b.last_inspected_at >= :cut2 THEN 'd90_180'
            ELSE 'gt180' END AS age,
       CASE WHEN b.last_inspected_at IS NULL THEN 'never'
            WHEN d.due_on < :today THEN 'overdue' ELSE 'within' END AS due,
       to_char(b.last_inspected_at AT TIME ZONE '{COUNTY_TZ_NAME}', 'YYYY-MM-DD HH24:MI') AS last_inspected_at,
       floor(extract(epoch FROM CAST(:now AS timestamptz) - b.last_inspected_at) / 86400)::int AS days,
       to_char(d.due_on, 'YYYY-MM-DD') AS due_on,
       ST_X(b.geom) AS lon, ST_Y(b.geom) AS lat
FROM buildings b
LEFT JOIN risk_intervals ri ON ri.risk_level = b.risk_level
CROSS JOIN LATERAL (
    SELECT CASE WHEN b.last_inspected_at IS NULL THEN NULL
                ELSE coalesce(b.next_inspection_on,
                              (b.last_inspected_at AT TIME ZONE '{COUNTY_TZ_NAME}')::date
                              + coalesce(ri.days, (SELECT max(days) FROM risk_intervals)))
           END AS due_on) d
WHERE b.is_rental AND {{in_scope}} {{grid}}
ORDER BY b.id
"""  # noqa: S608 - a constant zone name; the scope's condition binds its values


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def building_rows(conn: Conn, scope: Scope, now: dt.datetime | None = None, grid: str | None = None) -> list[Any]:
    """The rental buildings inside ``scope`` (of ``grid``, if given) with their classes."""
    at = _now(now)
    in_scope, params = scope.where("b")
    sql = _BUILDINGS.format(in_scope=in_scope, grid="AND b.grid_code = :grid" if grid else "")
    cuts = {f"cut{n}": at - dt.timedelta(days=d) for n, d in enumerate(AGE_LIMITS)}
    today = at.astimezone(COUNTY_TZ).date()
    return list(conn.execute(sa.text(sql), {**params, **cuts, "now": at, "today": today, "grid": grid}).all())


def _point_features(
    lon: list[float], lat: list[float], props: list[dict[str, Any]], display_crs: str
) -> list[dict[str, Any]]:
    if not props:
        return []
    x, y = _display(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), display_crs)
    xs = np.round(x, COORD_DECIMALS).tolist()
    ys = np.round(y, COORD_DECIMALS).tolist()
    return [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [px, py]}, "properties": p}
        for px, py, p in zip(xs, ys, props, strict=True)
    ]


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def building_points(
    conn: Conn,
    by: str,
    scope: Scope = WHOLE_COUNTY,
    display_crs: str = "wgs84",
    now: dt.datetime | None = None,
    grid: str | None = None,
) -> dict[str, Any]:
    """Rental buildings as points classed ``by`` risk, age or due (``cls`` in the properties),
    with the count of each class (``counts``)."""
    if by not in BUILDING_VIEWS:
        raise FieldworkInputError("by", by, f"is not one of {', '.join(BUILDING_VIEWS)}")
    check_display_crs(display_crs)
    rows = building_rows(conn, scope, now, grid)
    # Column-wise: county-wide this is tens of thousands of features, and per-row attribute access
    # on SQLAlchemy rows would be most of the time (as gis.fieldwork.layers.unvisited_points).
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 12
    ids, codes, names, grids, risk, age, due, last, days, due_on, lon, lat = columns
    classes = {"risk": risk, "age": age, "due": due}[by]
    keys = ("id", "code", "name", "grid_code", "cls", "risk_level", "last_inspected_at", "days", "due_on")
    values = zip(ids, codes, names, grids, classes, risk, last, days, due_on, strict=True)
    props = [dict(zip(keys, v, strict=True)) for v in values]
    counts = Counter(classes)
    features = _point_features(list(lon), list(lat), props, display_crs)
    return {
        "type": "FeatureCollection",
        "by": by,
        "counts": {c: counts.get(c, 0) for c in BUILDING_VIEWS[by]},
        "features": features,
    }


def grid_inspection_figures(
    conn: Conn, grid: str, scope: Scope = WHOLE_COUNTY, now: dt.datetime | None = None
) -> dict[str, Any]:
    """A grid's rental buildings: inspected within their interval, overdue for inspection, never
    inspected, and the share within (None without rental buildings)."""
    counts = Counter(r.due for r in building_rows(conn, scope, now, grid))
    total = sum(counts.values())
    figures: dict[str, Any] = {"buildings": total, **{c: counts.get(c, 0) for c in DUE_CLASSES}}
    figures["share_within"] = round(counts["within"] / total, 4) if total else None
    return figures


_HAZARDS = """
SELECT h.id, h.category, h.severity, h.status, h.found_at, h.rectify_by, h.escalation_level, h.grid_code,
       h.building_id, {overdue} AS overdue, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat
FROM hazards h
WHERE h.status <> 'rectified' AND h.geom IS NOT NULL AND {in_scope} {grid} {which}
ORDER BY h.id
"""


def hazard_points(
    conn: Conn,
    scope: Scope = WHOLE_COUNTY,
    display_crs: str = "wgs84",
    overdue: bool | None = None,
    now: dt.datetime | None = None,
    grid: str | None = None,
) -> dict[str, Any]:
    """Unrectified hazards inside ``scope`` with their status and ``overdue`` flag; ``overdue``
    True keeps the overdue ones, False the others, None all."""
    check_display_crs(display_crs)
    is_overdue = is_hazard_overdue("h", "CAST(:now AS timestamptz)")
    which = "" if overdue is None else f"AND {'' if overdue else 'NOT '}{is_overdue}"
    in_scope, params = scope.where("h")
    sql = _HAZARDS.format(
        overdue=is_overdue, in_scope=in_scope, grid="AND h.grid_code = :grid" if grid else "", which=which
    )
    rows = conn.execute(sa.text(sql), {**params, "now": _now(now), "grid": grid}).all()
    props = [
        {
            "id": r.id,
            "category": r.category,
            "severity": r.severity,
            "status": r.status,
            "overdue": bool(r.overdue),
            "found_at": _iso(r.found_at),
            "rectify_by": _iso(r.rectify_by),
            "escalation_level": r.escalation_level,
            "grid_code": r.grid_code,
            "building_id": r.building_id,
        }
        for r in rows
    ]
    features = _point_features([r.lon for r in rows], [r.lat for r in rows], props, display_crs)
    return {"type": "FeatureCollection", "features": features}


def chosen_campaign(
    conn: Conn, scope: Scope = WHOLE_COUNTY, campaign_id: int | None = None, today: dt.date | None = None
) -> dict[str, Any] | None:
    """The campaign ``campaign_id`` (NotFound outside the scope), or else the active one the caller
    sees: running today (the latest started), failing that the one that ended last; None without any."""
    if campaign_id is not None:
        return campaigns.get(conn, campaign_id, scope)
    day = today or dt.datetime.now(COUNTY_TZ).date()
    rows = conn.execute(
        sa.text(
            "SELECT id, area_code FROM campaigns "
            "ORDER BY (starts_on <= :d AND ends_on >= :d) DESC, "
            "CASE WHEN starts_on <= :d AND ends_on >= :d THEN starts_on END DESC, ends_on DESC, id DESC"
        ),
        {"d": day},
    ).all()
    for row in rows:
        # As campaigns.get: visible when its area is inside the scope or contains it.
        if scope.contains(row.area_code) or scope.shows(row.area_code):
            return campaigns.get(conn, row.id, scope)
    return None


def campaign_choices(conn: Conn, scope: Scope = WHOLE_COUNTY, limit: int = 50) -> list[dict[str, Any]]:
    """The campaigns the caller sees (as ``chosen_campaign``), latest first, for a page's selector."""
    rows = conn.execute(
        sa.text("SELECT id, name, area_code, starts_on, ends_on FROM campaigns ORDER BY starts_on DESC, id DESC")
    ).mappings()
    visible = [dict(r) for r in rows if scope.contains(r["area_code"]) or scope.shows(r["area_code"])]
    return visible[:limit]


def share_color(share: float | None) -> str:
    if share is None:
        return NO_SHARE_COLOR
    return next(c for limit, c in SHARE_RAMP if share < limit)


def campaign_grids(
    conn: Conn,
    campaign_id: int,
    measure: str,
    scope: Scope = WHOLE_COUNTY,
    display_crs: str = "wgs84",
    cache: Any = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The campaign's target grids inside ``scope`` (their boundaries in force, simplified like every
    map layer) coloured by the share of target buildings inspected (``measure`` "inspected") or of
    the hazards found rectified ("rectified"), with the campaign's figures in the properties."""
    from gis.outputs import mapdata

    if measure not in MEASURES:
        raise FieldworkInputError("measure", measure, f"is not one of {', '.join(MEASURES)}")
    check_display_crs(display_crs)
    data = campaigns.progress(conn, campaign_id, scope, now)
    figures = {g["grid_code"]: g for g in data["grids"] if g["grid_code"]}
    grids = mapdata.layer_geojson(conn, "grid", display_crs=display_crs, cache=cache, scope=scope)
    base = "targets" if measure == "inspected" else "hazards"
    features = []
    for feature in grids["features"]:  # copies: the cached layer is shared
        code = feature["properties"]["code"]
        grid = figures.get(code)
        if grid is None or not scope.contains(code):
            continue
        share = round(grid[measure] / grid[base], 4) if grid[base] else None
        style = {"fillColor": share_color(share), "fillOpacity": 0.6, "color": "#555", "weight": 0.6}
        props = {**feature["properties"], **grid, "measure": measure, "share": share, "style": style}
        features.append({**feature, "properties": props})
    campaign = data["campaign"]
    head = {k: _iso(v) if isinstance(v, dt.date) else v for k, v in campaign.items()}
    return {"type": "FeatureCollection", "campaign": head, "measure": measure, "features": features}
