"""Roads as preferred unit borders in redistricting proposals (gis.analysis.redistrict).

A planner wants a grid's edge to run along a road where one exists: residents and workers know it,
and a worker does not cross a main road to half of the grid. The solver's contiguity (queen,
libpysal) is a graph of links between neighbouring areal units (micro-grids, or building cells); a
link whose shared border lies mostly along a road (``Params.road_share`` of its length inside
``Params.road_buffer_m`` of a road line of table ``roads``; a corner-only link, if the corner is
on a road) is CUT, so max-p and the repair, compacting and balancing passes never join two units
across it, and the road becomes a border. Cutting must not make a feasible proposal impossible: a
piece the cuts leave below the household floor cannot be a unit of its own, so the least road-like
links joining it to its neighbours are put back (Kruskal over the road links); and a village that
still cannot be solved is solved again on the full contiguity (``solve_with_roads``; the report
notes it).

``border_share`` measures, for a labelling, how much of the borders between units (inside villages:
village edges are fixed, not the planner's choice) follows roads, so a proposal reports it beside
the grids in force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from gis.analysis.redistrict import Infeasible, Params, VillageResult, queen_neighbors, solve_village

BUFFER_M = 20.0  # half a road's width plus the offset of a boundary drawn beside it
SHARE_MIN = 0.5  # a link is a road link when at least this share of its border is along a road


@dataclass
class Links:
    """The links between neighbouring rows of one frame, with their shared border in metres."""

    pairs: npt.NDArray[np.int64]  # (k, 2), i < j
    length: npt.NDArray[np.float64]
    on_road: npt.NDArray[np.float64]
    share: npt.NDArray[np.float64]  # on_road / length; a corner-only link: 1 if the corner is on a road


def road_buffer(roads: Sequence[BaseGeometry], crs_from: int = 4326, buffer_m: float = BUFFER_M) -> BaseGeometry | None:
    """The roads (lon/lat lines) buffered by ``buffer_m`` in metres (EPSG:4549), one geometry, or None."""
    if not roads:
        return None
    metric = gpd.GeoSeries(list(roads), crs=crs_from).to_crs(4549)
    return shapely.union_all(shapely.buffer(np.asarray(metric.values, dtype=object), buffer_m, quad_segs=2))


def links(metric: gpd.GeoDataFrame, neighbors: dict[int, list[int]], buffer: BaseGeometry | None) -> Links:
    """Shared border length of each link of ``neighbors`` (rows of ``metric``, metres) and its part in ``buffer``."""
    pairs = np.asarray(sorted({(i, j) for i, js in neighbors.items() for j in js if i < j}), dtype=np.int64)
    pairs = pairs.reshape(-1, 2)
    if not len(pairs):
        return Links(pairs, np.zeros(0), np.zeros(0), np.zeros(0))
    edges = shapely.boundary(np.asarray(metric.geometry.values, dtype=object))
    shared = shapely.intersection(edges[pairs[:, 0]], edges[pairs[:, 1]], grid_size=0.01)
    length = shapely.length(shared)
    on_road, share = np.zeros(len(pairs)), np.zeros(len(pairs))
    if buffer is not None and not buffer.is_empty:
        shapely.prepare(buffer)
        near = shapely.intersects(buffer, shared)
        edge = near & (length > 0)
        if edge.any():
            on_road[edge] = shapely.length(shapely.intersection(shared[edge], buffer))
            share[edge] = on_road[edge] / length[edge]
        # Queen links through a corner on a road: units joined only there would straddle the road.
        share[near & (length == 0)] = 1.0
    return Links(pairs, length, on_road, share)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def cut_road_links(
    neighbors: dict[int, list[int]],
    found: Links,
    households: npt.NDArray[np.int64],
    floor: int,
    share_min: float = SHARE_MIN,
) -> tuple[dict[int, list[int]], int, int]:
    """The contiguity without its road links, except those joining a piece the cut leaves below
    the household ``floor`` to a neighbour: (neighbours, links cut, road links kept)."""
    road = found.share >= share_min
    index = {(int(a), int(b)): k for k, (a, b) in enumerate(found.pairs)}
    parent = list(range(len(neighbors)))
    for (a, b), k in index.items():
        if not road[k]:
            parent[_find(parent, a)] = _find(parent, b)
    hh: dict[int, int] = {}
    for i in range(len(neighbors)):
        hh[_find(parent, i)] = hh.get(_find(parent, i), 0) + int(households[i])
    kept = set()
    # Kruskal over the road links, least road-like first: a piece below the floor cannot be a unit
    # of its own, so it joins a neighbouring piece across the road (a piece at the floor stays apart).
    for k in sorted(np.flatnonzero(road).tolist(), key=lambda k: (found.share[k], -found.length[k])):
        a, b = (int(v) for v in found.pairs[k])
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb and min(hh[ra], hh[rb]) < floor:
            parent[ra] = rb
            hh[rb] += hh.pop(ra)
            kept.add(k)
    cut = {k for k in np.flatnonzero(road).tolist() if k not in kept}
    out = {i: [j for j in js if index.get((min(i, j), max(i, j)), -1) not in cut] for i, js in neighbors.items()}
    return out, len(cut), len(kept)


def border_share(labels: Sequence[object] | npt.NDArray[Any], found: Links) -> dict[str, float]:
    """Length of the borders between differently labelled neighbours and the part along roads."""
    lab = np.asarray(labels, dtype=object)
    if not len(found.pairs):
        return {"border_m": 0.0, "on_road_m": 0.0, "share": 0.0}
    border = lab[found.pairs[:, 0]] != lab[found.pairs[:, 1]]
    total, road = float(found.length[border].sum()), float(found.on_road[border].sum())
    return {"border_m": round(total, 1), "on_road_m": round(road, 1), "share": round(road / total, 3) if total else 0.0}


def add_shares(into: dict[str, float], more: dict[str, float]) -> dict[str, float]:
    total = into.get("border_m", 0.0) + more["border_m"]
    road = into.get("on_road_m", 0.0) + more["on_road_m"]
    return {"border_m": round(total, 1), "on_road_m": round(road, 1), "share": round(road / total, 3) if total else 0.0}


def solve_with_roads(
    village: str,
    frame: gpd.GeoDataFrame,
    households: npt.NDArray[np.int64],
    load: npt.NDArray[np.float64],
    params: Params,
    roads: BaseGeometry | None,
) -> tuple[VillageResult, Links]:
    """``solve_village`` on the contiguity with road links cut (when ``roads``, a metric buffer, meets
    the village); falls back to the full contiguity if that cut leaves no solution. Returns the result
    and the links (for ``border_share``)."""
    neighbors = queen_neighbors(frame)
    metric = frame.to_crs(4549)
    found = links(metric, neighbors, roads)
    if roads is None or not found.on_road.any():
        return solve_village(village, frame, households, load, params, neighbors=neighbors), found
    reduced, cut, kept = cut_road_links(neighbors, found, households, params.band[0], params.road_share)
    try:
        res = solve_village(village, frame, households, load, params, neighbors=reduced)
        res.notes.append(f"{cut} links along roads cut, {kept} kept to join pieces below the floor")
    except Infeasible as exc:
        res = solve_village(village, frame, households, load, params, neighbors=neighbors)
        res.notes.append(f"roads ignored: with the {cut} links along roads cut, {exc}")
    return res, found
