"""Redistricting proposals of MICRO-GRIDS built from buildings (gis.analysis.proposal with
``Params.layer == "micro_grid"``), grid by grid, with the same solver as grids from micro-grids.

The areal units are the buildings' Voronoi cells clipped to their grid (shapely): a tessellation of
the grid in which each cell holds one building site (buildings at one point share a cell) and its
households, as many cells as sites. Cells cover the grid exactly, so the micro-grids dissolved from
them cover it and nest in it by construction; they are contiguous (queen contiguity of the cells,
libpysal) and compact (max-p on the cells' centres, then the compacting pass), in the band
``Params.band`` (50-80 households by default, the micro-grid rule), and they follow roads where
roads exist (gis.analysis.redistrict_roads). Households are those of the ``buildings`` table, counted
as the validation counts them (a building belongs to the smallest-code grid covering it), so the
households of a grid are preserved in its micro-grids. The micro-grid in force of each building
(``micro_grid_code``) is max-p's "current" unit, so buildings of one micro-grid tend to stay
together. A grid whose buildings cannot make micro-grids in the band is reported with the reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from boundaries import drafts
from boundaries.findings import Rules
from boundaries.households import covering_index
from boundaries.impact import preview_impact
from boundaries.validate import validate_draft
from gis.analysis import proposal
from gis.analysis.redistrict import Infeasible, Params, Progress, polsby_popper
from gis.analysis.redistrict_roads import add_shares, border_share, road_buffer, solve_with_roads
from gis.core.predicates import in_generation
from gis.spatial.areas import Conn, current_generation
from gis.spatial.roads import roads_within


def load_grids(conn: Conn, area: str) -> gpd.GeoDataFrame:
    """The grids in force of ``area``: the grid itself, a village's grids, or a town's."""
    g = current_generation(conn)
    rows = conn.execute(
        sa.text(
            "SELECT g.code, g.parent_code, ST_AsBinary(g.geom) AS wkb FROM areas g "  # noqa: S608
            f"WHERE g.layer = 'grid' AND {in_generation('g')} AND (g.code = :a OR g.parent_code = :a OR "
            " g.parent_code IN (SELECT v.code FROM areas v WHERE v.layer = 'village' AND v.parent_code = :a "
            f" AND {in_generation('v')})) ORDER BY g.code"
        ),
        {"a": area, "g": g},
    ).all()
    return gpd.GeoDataFrame(
        {"code": [r.code for r in rows], "village": [r.parent_code for r in rows]},
        geometry=gpd.GeoSeries(shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else [], crs=4326),
    )


def load_buildings(conn: Conn, grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """The buildings in the grids' bounds, each with its grid (the validation's edge rule) or -1."""
    x0, y0, x1, y1 = (float(v) for v in grids.total_bounds)
    rows = conn.execute(
        sa.text(
            "SELECT code, households, coalesce(micro_grid_code, '') AS current, ST_X(geom) AS x, ST_Y(geom) AS y "
            "FROM buildings WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) ORDER BY id"
        ),
        {"x0": x0, "y0": y0, "x1": x1, "y1": y1},
    ).all()
    frame = pd.DataFrame(rows, columns=["code", "households", "current", "x", "y"])
    points = shapely.points(frame[["x", "y"]].to_numpy(float)) if len(frame) else np.zeros(0, dtype=object)
    frame["grid"] = covering_index(
        np.asarray(grids["code"], dtype=object), np.asarray(grids.geometry.values, dtype=object), points
    )
    return frame[frame["grid"] >= 0].reset_index(drop=True)


def building_cells(grid: BaseGeometry, buildings: pd.DataFrame) -> gpd.GeoDataFrame:
    """The Voronoi cells of the building sites, clipped to ``grid``: one row per site (code = its
    first building's, households summed, current = the micro-grid in force of most of its
    households); a clipped cell's pieces away from its site (a concave grid) are rows of no households."""
    sites = (
        buildings.assign(kx=buildings["x"].round(7), ky=buildings["y"].round(7))
        .sort_values(["households", "code"], ascending=[False, True])
        .groupby(["kx", "ky"], sort=True)
        .agg(code=("code", "first"), households=("households", "sum"), current=("current", "first"))
        .reset_index()
    )
    points = shapely.points(sites[["kx", "ky"]].to_numpy(float))
    if len(sites) == 1:
        cells = np.asarray([grid], dtype=object)
    else:
        diagram = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=grid, ordered=True)
        cells = shapely.intersection(np.asarray(shapely.get_parts(diagram), dtype=object), grid)
    rows: list[dict[str, Any]] = []
    geoms: list[BaseGeometry] = []
    for k, cell in enumerate(cells):
        for part in shapely.get_parts(cell):
            if part.geom_type != "Polygon" or part.is_empty:
                continue  # a line or point where a cell only touches the grid's edge
            mine = part.covers(points[k])
            rows.append(
                {
                    "code": sites["code"].iloc[k] if mine else f"{sites['code'].iloc[k]}~{len(rows)}",
                    "households": int(sites["households"].iloc[k]) if mine else 0,
                    "current": sites["current"].iloc[k],
                }
            )
            geoms.append(part)
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)


def propose_micro_grids(
    conn: Conn, area: str, params: Params, *, author: str, progress: Progress | None = None
) -> dict[str, Any]:
    """Micro-grids from buildings for ``area`` (a town, village or grid) as a micro_grid draft; the
    report, or Infeasible with the reason per grid."""
    report_progress: Progress = progress or (lambda _f, _m: None)
    low, high = params.band
    kind = proposal.area_kind(conn, area, "micro_grid")
    report_progress(0.02, f"reading the grids and buildings of {kind} {area}")
    grids = load_grids(conn, area)
    if not len(grids):
        raise Infeasible(f"{kind} {area} has no grids in force")
    buildings = load_buildings(conn, grids)
    x0, y0, x1, y1 = (float(v) for v in grids.total_bounds)
    lines = roads_within(conn, (x0, y0, x1, y1)) if params.roads else []
    buffer = road_buffer(lines, buffer_m=params.road_buffer_m)
    report_progress(0.05, f"{len(buildings)} buildings in {len(grids)} grids and {len(lines)} roads read")
    # Buildings are coarse parts for a 50-80 band: more max-p starts are worth their (small) cost.
    solve = dataclasses.replace(
        params, part="building cell", container="grid", balance="households", restarts=max(params.restarts, 4)
    )
    reasons, notes, parts = [], [], []
    shares: dict[str, dict[str, float]] = {"proposal": {}, "current": {}}
    offset, moves = 0, 0
    for k, (code, village, geom) in enumerate(zip(grids["code"], grids["village"], grids.geometry, strict=True)):
        mine = buildings[buildings["grid"] == k]
        if not len(mine):
            reasons.append(f"grid {code} has no buildings: no households to make micro-grids of {low}-{high}")
            continue
        cells = building_cells(geom, mine)
        hh = cells["households"].to_numpy(np.int64)
        try:
            res, found = solve_with_roads(code, cells, hh, hh.astype(float), solve, buffer)
        except Infeasible as exc:
            reasons.append(str(exc))
            continue
        parts.append(cells.assign(unit=res.labels + offset, grid=code, village=village))
        offset, moves = offset + int(res.labels.max()) + 1, moves + res.moves
        notes += [f"grid {code}: {n}" for n in res.notes]
        shares["proposal"] = add_shares(shares["proposal"], border_share(res.labels, found))
        shares["current"] = add_shares(shares["current"], border_share(cells["current"].to_numpy(), found))
        report_progress(0.05 + 0.6 * (k + 1) / len(grids), f"grid {code} solved ({k + 1}/{len(grids)})")
    if reasons:
        raise Infeasible("; ".join(reasons))
    report_progress(0.7, "writing the draft")
    cells = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=4326)
    draft_id = drafts.create_draft(conn, "micro_grid", area, author=author, note=f"micro-grid proposal for {area}")
    old = drafts.load_features(conn, draft_id)
    units = _dissolve(cells)
    taken = {str(c) for c in conn.execute(sa.text("SELECT code FROM areas WHERE layer = 'micro_grid'")).scalars()}
    proposal._codes(units, old, cells, taken - set(old["code"]), digits=2, noun="微网格")
    drafts.replace_features(conn, draft_id, units.reset_index(drop=True), actor=author, source="redistrict")
    report_progress(0.8, "validating the draft")
    rules = Rules(households={"grid": Rules().households["grid"], "micro_grid": (low, high)})
    validation = validate_draft(conn, draft_id, rules)
    blocking = [f for f in validation.findings if f.kind in proposal.BLOCKING]
    if blocking:
        drafts.discard_draft(conn, draft_id, actor=author)
        raise Infeasible("the proposal fails validation: " + "; ".join(f.message for f in blocking[:10]))
    report_progress(0.9, "counting the addresses that change micro-grid")
    impact = preview_impact(conn, draft_id)
    pp = polsby_popper(units.geometry.to_crs(4549))
    old_hh = buildings[buildings["current"] != ""].groupby("current")["households"].sum()
    return {
        "draft_id": draft_id,
        "area": area,
        "kind": kind,
        "params": {"band": [low, high], "layer": "micro_grid", "roads": params.roads},
        "grids": len(grids),
        "buildings": len(buildings),
        "cells": len(cells),
        "households": {"buildings": int(buildings["households"].sum()), "proposal": int(units["households"].sum())},
        "proposal": proposal._figures(
            units.geometry.to_crs(4549),
            list(units["parent_code"]),
            list(units["households"]),
            [0.0] * len(units),
        ),
        "current": proposal._figures(
            old.geometry.to_crs(4549),
            [str(p) for p in old["parent_code"]],
            [int(old_hh.get(c, 0)) for c in old["code"]],
            [0.0] * len(old),
        ),
        "addresses_changing_micro_grid": int(impact["totals"]["addresses"]),
        "households_changing_micro_grid": int(impact["totals"]["households"]),
        "borders_on_roads": {"roads": len(lines), **shares, "notes": notes[:20]},
        "repair_moves": moves,
        "warnings": [f.message for f in validation.findings if f.kind not in proposal.BLOCKING][:20],
        "units": [
            {"code": c, "grid": p, "households": int(h), "polsby_popper": round(float(q), 3)}
            for c, p, h, q in zip(units["code"], units["parent_code"], units["households"], pp, strict=True)
        ],
    }


def _dissolve(cells: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One polygon per unit (its cells' union), parented by its grid, with its households."""
    merged = cells.dissolve(by="unit", aggfunc={"households": "sum", "grid": "first"})
    households: npt.NDArray[np.int64] = merged["households"].to_numpy(np.int64)
    return gpd.GeoDataFrame(
        {
            "code": "",
            "name": "",
            "parent_code": merged["grid"],
            "households": households,
            "attrs": [{} for _ in range(len(merged))],
        },
        geometry=merged.geometry.values,
        crs=4326,
        index=merged.index,
    )
