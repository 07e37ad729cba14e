"""The staffing report (配置情况): where the 1+3+N teams have gaps, on one day.

* grids without an auxiliary police officer (网格辅警);
* households and new residents (新居民) per full-time grid worker, per grid (households as recorded
  for the grid; new residents summed over the buildings assigned to it);
* micro-grids without a leader (微网格长);
* key villages (village stations flagged ``is_key``) without a community police officer posted to
  the village or one of its grids;
* postings ending within ``within_days``.

Grids and micro-grids are those of the boundary generation in force now. The same figures come as
JSON (``report``), as an XLSX workbook (``write_xlsx``, one sheet each) and as a map layer
(``grid_features``: every grid with its figures, as GeoJSON).

A scoped account's report covers its areas only (code-prefix tests on the grids, micro-grids,
key villages and postings listed): figures of other areas are neither listed nor summed.
"""

from __future__ import annotations

import datetime as dt
import json
from io import BytesIO
from typing import Any

import pandas as pd
import sqlalchemy as sa

from gis.core.predicates import in_generation
from gis.people.roster import mask_posting
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.people.write import POSTING_COLUMNS, POSTING_FROM
from gis.spatial.areas import Conn, current_generation

IN_FORCE = "pe.status = 'active' AND po.starts_on <= :on AND (po.ends_on IS NULL OR po.ends_on >= :on)"


SHEETS = {
    "grids": "网格配置",
    "grids_without_aux_police": "无辅警网格",
    "micro_grids_without_leader": "无微网格长",
    "key_villages_without_community_police": "重点村无社区民警",
    "postings_ending_soon": "即将到期",
}


def grid_rows(conn: Conn, on: dt.date, geometry: bool = False, scope: Scope = WHOLE_COUNTY) -> list[dict[str, Any]]:
    """Every grid in force inside ``scope`` with its team counts and workload on day ``on``."""
    generation = current_generation(conn)
    if generation is None:
        return []
    in_scope, scope_params = scope.code_where("g.code")
    geom = ", ST_AsGeoJSON(g.geom, 6) AS geojson" if geometry else ""
    rows = conn.execute(
        sa.text(
            f"""
            WITH team AS (
                SELECT po.area_code AS code,
                       count(*) FILTER (WHERE po.role = 'grid_worker') AS workers,
                       count(*) FILTER (WHERE po.role = 'aux_police') AS aux_police,
                       count(*) FILTER (WHERE po.role = 'grid_leader') AS leaders
                FROM postings po JOIN people pe ON pe.id = po.person_id
                WHERE po.layer = 'grid' AND {IN_FORCE}
                GROUP BY po.area_code
            ), residents AS (
                SELECT grid_code AS code, sum(new_residents) AS new_residents FROM buildings GROUP BY grid_code
            ), micro AS (
                SELECT m.parent_code AS code, count(*) AS micro_grids,
                       count(*) FILTER (WHERE NOT EXISTS (
                           SELECT 1 FROM postings po JOIN people pe ON pe.id = po.person_id
                           WHERE po.layer = 'micro_grid' AND po.area_code = m.code
                             AND po.role = 'micro_grid_leader' AND {IN_FORCE})) AS without_leader
                FROM areas m WHERE m.layer = 'micro_grid' AND {in_generation("m")}
                GROUP BY m.parent_code
            )
            SELECT g.code, g.name, g.parent_code AS village_code, coalesce(g.households, 0) AS households,
                   coalesce(r.new_residents, 0) AS new_residents, coalesce(t.leaders, 0) AS leaders,
                   coalesce(t.workers, 0) AS workers, coalesce(t.aux_police, 0) AS aux_police,
                   coalesce(mi.micro_grids, 0) AS micro_grids,
                   coalesce(mi.without_leader, 0) AS micro_grids_without_leader{geom}
            FROM areas g LEFT JOIN team t ON t.code = g.code LEFT JOIN residents r ON r.code = g.code
            LEFT JOIN micro mi ON mi.code = g.code
            WHERE g.layer = 'grid' AND {in_generation("g")} AND {in_scope}
            ORDER BY g.code
            """  # noqa: S608
        ),
        {"g": generation, "on": on, **scope_params},
    ).all()
    out = []
    for r in rows:
        row = dict(r._mapping)
        workers = row["workers"]
        row["households_per_worker"] = round(row["households"] / workers, 1) if workers else None
        row["new_residents_per_worker"] = round(row["new_residents"] / workers, 1) if workers else None
        out.append({k: int(v) if k in ("new_residents",) else v for k, v in row.items()})
    return out


def report(
    conn: Conn, on: dt.date, *, within_days: int = 30, sees_personal_data: bool = False, scope: Scope = WHOLE_COUNTY
) -> dict[str, Any]:
    grids = grid_rows(conn, on, scope=scope)
    generation = current_generation(conn)
    micro_scope, micro_params = scope.code_where("m.code")
    village_scope, village_params = scope.code_where("ou.area_code")
    posting_scope, posting_params = scope.code_where("po.area_code")
    micro = []
    if generation is not None:
        micro = [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(
                    f"SELECT m.code, m.name, m.parent_code AS grid_code, m.households FROM areas m "  # noqa: S608
                    f"WHERE m.layer = 'micro_grid' AND {in_generation('m')} "
                    "AND NOT EXISTS (SELECT 1 FROM postings po JOIN people pe ON pe.id = po.person_id "
                    "WHERE po.layer = 'micro_grid' AND po.area_code = m.code AND po.role = 'micro_grid_leader' "
                    f"AND {IN_FORCE}) AND {micro_scope} ORDER BY m.code"
                ),
                {"g": generation, "on": on, **micro_params},
            )
        ]
    key_villages = [
        dict(r._mapping)
        for r in conn.execute(
            sa.text(
                "SELECT ou.code AS org_unit, ou.name, ou.area_code AS village_code FROM org_units ou "  # noqa: S608
                "WHERE ou.kind = 'village_station' AND ou.is_key AND NOT EXISTS ("
                "SELECT 1 FROM postings po JOIN people pe ON pe.id = po.person_id "
                f"LEFT JOIN areas g ON g.layer = 'grid' AND g.code = po.area_code AND {in_generation('g')} "
                "WHERE po.role = 'community_police' AND "
                "((po.layer = 'village' AND po.area_code = ou.area_code) "
                f"OR (po.layer = 'grid' AND g.parent_code = ou.area_code)) AND {IN_FORCE}) AND {village_scope} "
                "ORDER BY ou.area_code"
            ),
            {"on": on, "g": generation or 0, **village_params},
        )
    ]
    until = on + dt.timedelta(days=within_days)
    ending = conn.execute(
        sa.text(
            f"SELECT {POSTING_COLUMNS} FROM {POSTING_FROM} WHERE pe.status = 'active' "  # noqa: S608
            f"AND po.ends_on BETWEEN :on AND :until AND po.starts_on <= po.ends_on AND {posting_scope} "
            "ORDER BY po.ends_on, po.id"
        ),
        {"on": on, "until": until, **posting_params},
    ).all()
    ending_rows = []
    for r in ending:
        row = mask_posting(dict(r._mapping), sees_personal_data)
        row.pop("id_card", None)
        ending_rows.append(row)
    without_aux = [g for g in grids if g["aux_police"] == 0]
    workers = sum(g["workers"] for g in grids)
    households = sum(g["households"] for g in grids)
    new_residents = sum(g["new_residents"] for g in grids)
    return {
        "as_of": on,
        "within_days": within_days,
        "summary": {
            "grids": len(grids),
            "grids_without_aux_police": len(without_aux),
            "grids_without_worker": sum(1 for g in grids if g["workers"] == 0),
            "grids_without_leader": sum(1 for g in grids if g["leaders"] == 0),
            "full_time_workers": workers,
            "households_per_worker": round(households / workers, 1) if workers else None,
            "new_residents_per_worker": round(new_residents / workers, 1) if workers else None,
            "micro_grids_without_leader": len(micro),
            "key_villages_without_community_police": len(key_villages),
            "postings_ending_soon": len(ending_rows),
        },
        "grids": grids,
        "grids_without_aux_police": [
            {k: g[k] for k in ("code", "name", "village_code", "households")} for g in without_aux
        ],
        "micro_grids_without_leader": micro,
        "key_villages_without_community_police": key_villages,
        "postings_ending_soon": ending_rows,
    }


def write_xlsx(data: dict[str, Any]) -> bytes:
    """The report as a workbook: a summary sheet, then one sheet per list."""
    buffer = BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        summary = pd.DataFrame(
            [{"item": k, "value": v} for k, v in {"as_of": str(data["as_of"]), **data["summary"]}.items()]
        )
        summary.to_excel(writer, sheet_name="汇总", index=False)
        for key, title in SHEETS.items():
            frame = pd.DataFrame(data[key])
            for column in frame.columns:
                if frame[column].map(lambda v: isinstance(v, dt.date)).any():
                    frame[column] = frame[column].map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
            frame.to_excel(writer, sheet_name=title, index=False)
    return buffer.getvalue()


def grid_features(conn: Conn, on: dt.date, geometry: bool = True, scope: Scope = WHOLE_COUNTY) -> dict[str, Any]:
    """Every grid (inside ``scope``) with its staffing figures, as a GeoJSON FeatureCollection (the map layer);
    ``gap`` is true for a grid without a worker, a leader or an auxiliary police officer.
    Without ``geometry`` the features carry the figures only (geometry null)."""
    features = []
    for row in grid_rows(conn, on, geometry=geometry, scope=scope):
        shape = json.loads(row.pop("geojson")) if geometry else None
        row["gap"] = row["workers"] == 0 or row["leaders"] == 0 or row["aux_police"] == 0
        features.append({"type": "Feature", "geometry": shape, "properties": row})
    return {"type": "FeatureCollection", "features": features}
