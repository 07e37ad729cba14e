"""Campaigns (专项整治, e.g. the e-bike charging campaign): a name, a checklist, an area, a period
and a target set of buildings (given, or by default the rental buildings of the area when the
campaign is made).

Progress counts, per grid, per town and in total: the target buildings; those inspected with the
campaign's checklist kind in the period; those where such an inspection failed an item; the hazards
those inspections opened; how many are rectified, how many were rectified on time (by the deadline
of the rectification order, the one set when the hazard was opened) and how many are overdue now.
As JSON, as an XLSX workbook (openpyxl through pandas, as the staffing report) and as a GeoJSON
layer of the grids for the maps (``grid_features``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from io import BytesIO
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import checklists
from gis.fieldwork.common import FieldworkInputError, NotFound, text
from gis.fieldwork.overdue import is_hazard_overdue
from gis.people.scope import WHOLE_COUNTY, Scope, ScopeError, code_layer
from gis.spatial.areas import IN_GENERATION, Conn, current_generation

MAX_TARGETS = 50_000
FIGURES = ("targets", "inspected", "failed", "hazards", "rectified", "rectified_on_time", "overdue")


def _day(data: Mapping[str, Any], field: str) -> dt.date:
    value = data.get(field)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise FieldworkInputError(field, f"{str(value)[:40]!r} is not a date (YYYY-MM-DD)") from None


def create(conn: Conn, data: Mapping[str, Any], actor: str, scope: Scope = WHOLE_COUNTY) -> dict[str, Any]:
    name = text(data, "name", 200)
    if name is None:
        raise FieldworkInputError("name", "missing")
    checklist = checklists.resolve(conn, data)
    area = data.get("area_code")
    try:
        area_scope = Scope.parse(str(area)) if area else None
    except ScopeError as exc:
        raise FieldworkInputError("area_code", str(exc)) from None
    if area_scope is None or len(area_scope.codes) != 1:
        raise FieldworkInputError("area_code", f"{str(area)[:40]!r} is not one area code")
    area = area_scope.codes[0]
    known = conn.execute(
        sa.text(f"SELECT 1 FROM areas WHERE code = :code AND layer = :layer AND {IN_GENERATION}"),  # noqa: S608
        {"code": area, "layer": code_layer(area), "g": current_generation(conn)},
    ).scalar()
    if not known or not scope.contains(area):
        raise FieldworkInputError("area_code", f"{area!r} is not an area in force inside the key's scope")
    starts_on, ends_on = _day(data, "starts_on"), _day(data, "ends_on")
    if ends_on < starts_on:
        raise FieldworkInputError("ends_on", f"{ends_on} is before starts_on {starts_on}")
    in_area, params = area_scope.where("b", prefix="area_")
    targets = data.get("building_ids")
    if targets is None:
        ids = list(
            conn.execute(
                sa.text(f"SELECT b.id FROM buildings b WHERE b.is_rental AND {in_area} ORDER BY b.id LIMIT :lim"),  # noqa: S608
                {**params, "lim": MAX_TARGETS},
            ).scalars()
        )
    else:
        ids = _targets(conn, targets, in_area, params)
    campaign_id = conn.execute(
        sa.text(
            "INSERT INTO campaigns (name, checklist_id, area_code, starts_on, ends_on, created_by) "
            "VALUES (:name, :checklist, :area, :s, :e, :actor) RETURNING id"
        ),
        {"name": name, "checklist": checklist["id"], "area": area, "s": starts_on, "e": ends_on, "actor": actor},
    ).scalar_one()
    conn.execute(
        sa.text("INSERT INTO campaign_buildings (campaign_id, building_id) SELECT :c, unnest(CAST(:ids AS bigint[]))"),
        {"c": campaign_id, "ids": ids},
    )
    audit.record(conn, actor, "campaign.create", f"campaign/{campaign_id}", area=area, targets=len(ids))
    return get(conn, campaign_id, scope)


def _targets(conn: Conn, raw: Any, in_area: str, params: dict[str, Any]) -> list[int]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) > MAX_TARGETS:
        raise FieldworkInputError("building_ids", f"give a list of at most {MAX_TARGETS} building ids")
    for n, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
            raise FieldworkInputError(f"building_ids[{n}]", f"{value!r} is not a building id")
    ids = list(dict.fromkeys(raw))
    found = set(
        conn.execute(
            sa.text(f"SELECT b.id FROM buildings b WHERE b.id = ANY(:ids) AND {in_area}"),  # noqa: S608
            {**params, "ids": ids},
        ).scalars()
    )
    for n, value in enumerate(raw):
        if value not in found:
            raise FieldworkInputError(f"building_ids[{n}]", f"building {value} does not exist in the campaign's area")
    return ids


def get(conn: Conn, campaign_id: int, scope: Scope = WHOLE_COUNTY) -> dict[str, Any]:
    row = (
        conn.execute(
            sa.text(
                "SELECT c.id, c.name, c.area_code, c.starts_on, c.ends_on, c.created_by, c.created_at, "
                "k.kind AS checklist_kind, k.version AS checklist_version, "
                "(SELECT count(*) FROM campaign_buildings cb WHERE cb.campaign_id = c.id) AS targets "
                "FROM campaigns c JOIN checklists k ON k.id = c.checklist_id WHERE c.id = :id"
            ),
            {"id": campaign_id},
        )
        .mappings()
        .one_or_none()
    )
    # A campaign is visible to keys whose scope overlaps its area (inside it, or containing it).
    if row is None or not (scope.contains(row["area_code"]) or scope.shows(row["area_code"])):
        raise NotFound("campaign", campaign_id)
    return dict(row)


def _window(campaign: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(campaign["starts_on"], dt.time(), COUNTY_TZ)
    end = dt.datetime.combine(campaign["ends_on"] + dt.timedelta(days=1), dt.time(), COUNTY_TZ)
    return start, end


_PROGRESS = """
WITH t AS (
    SELECT b.id, b.town_code, b.grid_code FROM campaign_buildings cb JOIN buildings b ON b.id = cb.building_id
    WHERE cb.campaign_id = :c AND {in_scope}),
insp AS (
    SELECT i.id, i.building_id, i.outcome FROM inspections i JOIN checklists k ON k.id = i.checklist_id
    WHERE i.building_id IN (SELECT id FROM t) AND k.kind = :kind AND i.at >= :start AND i.at < :end),
per_building AS (
    SELECT building_id, bool_or(outcome = 'fail') AS failed FROM insp GROUP BY building_id),
hz AS (
    SELECT h.building_id,
           count(*) AS hazards,
           count(*) FILTER (WHERE h.status = 'rectified') AS rectified,
           count(*) FILTER (WHERE h.status = 'rectified' AND h.rectified_at <= coalesce(
               (SELECT e.deadline FROM hazard_events e WHERE e.hazard_id = h.id AND e.action = 'open'
                ORDER BY e.id LIMIT 1), h.rectify_by)) AS on_time,
           count(*) FILTER (WHERE {overdue}) AS overdue
    FROM hazards h WHERE h.inspection_id IN (SELECT id FROM insp) GROUP BY h.building_id)
SELECT t.town_code, t.grid_code, GROUPING(t.town_code, t.grid_code) AS g,
       count(*) AS targets, count(pb.building_id) AS inspected, count(*) FILTER (WHERE pb.failed) AS failed,
       coalesce(sum(hz.hazards), 0) AS hazards, coalesce(sum(hz.rectified), 0) AS rectified,
       coalesce(sum(hz.on_time), 0) AS rectified_on_time, coalesce(sum(hz.overdue), 0) AS overdue
FROM t LEFT JOIN per_building pb ON pb.building_id = t.id LEFT JOIN hz ON hz.building_id = t.id
GROUP BY GROUPING SETS ((t.town_code, t.grid_code), (t.town_code), ())
ORDER BY g DESC, t.town_code, t.grid_code
"""


def progress(
    conn: Conn, campaign_id: int, scope: Scope = WHOLE_COUNTY, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The campaign's figures in total, per town and per grid (inside the caller's scope)."""
    campaign = get(conn, campaign_id, scope)
    start, end = _window(campaign)
    in_scope, params = scope.where("b")
    sql = _PROGRESS.format(in_scope=in_scope, overdue=is_hazard_overdue("h", "CAST(:now AS timestamptz)"))
    rows = conn.execute(
        sa.text(sql),
        {**params, "c": campaign_id, "kind": campaign["checklist_kind"], "start": start, "end": end,
         "now": now or dt.datetime.now(dt.UTC)},
    ).mappings()  # fmt: skip
    names: dict[str, str] = dict(
        conn.execute(
            sa.text(f"SELECT code, name FROM areas WHERE layer IN ('town', 'grid') AND {IN_GENERATION}"),  # noqa: S608
            {"g": current_generation(conn)},
        ).all()
    )
    total: dict[str, Any] = dict.fromkeys(FIGURES, 0)
    towns: list[dict[str, Any]] = []
    grids: list[dict[str, Any]] = []
    for row in rows:
        figures = {f: int(row[f]) for f in FIGURES}
        if row["g"] == 3:
            total = figures
        elif row["g"] == 1:
            towns.append({"town_code": row["town_code"], "town_name": names.get(row["town_code"]), **figures})
        else:
            grids.append({"town_code": row["town_code"], "grid_code": row["grid_code"],
                          "grid_name": names.get(row["grid_code"]), **figures})  # fmt: skip
    return {"campaign": campaign, "total": total, "towns": towns, "grids": grids}


def grid_features(conn: Conn, campaign_id: int, scope: Scope = WHOLE_COUNTY) -> dict[str, Any]:
    """The progress per grid as a GeoJSON FeatureCollection (the campaign's map layer): each grid
    with target buildings, its figures and the shares inspected and rectified (0..1, None without
    targets or hazards), over the grid's boundary in force (simplified to about a metre)."""
    data = progress(conn, campaign_id, scope)
    codes = [g["grid_code"] for g in data["grids"] if g["grid_code"]]
    shapes: dict[str, str] = dict(
        conn.execute(
            sa.text(
                "SELECT code, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.00001), 6) FROM areas "  # noqa: S608
                f"WHERE layer = 'grid' AND code = ANY(:codes) AND {IN_GENERATION}"
            ),
            {"codes": codes, "g": current_generation(conn)},
        ).all()
    )
    features = []
    for grid in data["grids"]:
        props = dict(grid)
        props["inspected_share"] = round(grid["inspected"] / grid["targets"], 4) if grid["targets"] else None
        props["rectified_share"] = round(grid["rectified"] / grid["hazards"], 4) if grid["hazards"] else None
        shape = shapes.get(grid["grid_code"])
        features.append({"type": "Feature", "geometry": json.loads(shape) if shape else None, "properties": props})
    return {"type": "FeatureCollection", "campaign": data["campaign"]["id"], "features": features}


def write_xlsx(data: Mapping[str, Any]) -> bytes:
    """The progress as a workbook: the campaign and its totals, then a sheet per town and per grid."""
    import pandas as pd

    buffer = BytesIO()
    campaign = data["campaign"]
    summary = [{"item": k, "value": str(v)} for k, v in campaign.items()] + [
        {"item": k, "value": v} for k, v in data["total"].items()
    ]
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame(summary).to_excel(writer, sheet_name="汇总", index=False)
        pd.DataFrame(data["towns"], columns=["town_code", "town_name", *FIGURES]).to_excel(
            writer, sheet_name="镇街", index=False
        )
        pd.DataFrame(data["grids"], columns=["town_code", "grid_code", "grid_name", *FIGURES]).to_excel(
            writer, sheet_name="网格", index=False
        )
    return buffer.getvalue()
