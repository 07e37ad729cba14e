"""Synthetic boundary layers of Jiashan in EPSG:4549: towns -> villages -> grids -> micro-grids.

Codes and names of towns and villages are real; every polygon is synthetic.
The four levels are fitted top-down with ``power_partition`` and then made an
exact nested coverage in one pass (``coverage.assemble_coverage``) with the
micro-grids as leaves, so every parent is literally the union of its children.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon
from shapely.ops import nearest_points

from demo.jiashan.allocation import largest_remainder, split_total
from demo.jiashan.coverage import GeomArray, union_by_label
from demo.jiashan.outline import COUNTY_CODE, Divisions
from demo.jiashan.partition import power_partition, sample_in_polygon

METRIC_CRS = "EPSG:4549"
GRID_COUNT = 760
GRID_HOUSEHOLDS = (300, 500)
MICRO_HOUSEHOLDS = (50, 80)

# Rough position of each town seat as a fraction of the county's bounding box
# (west->east, south->north), so towns land roughly where they really are.
TOWN_SEATS: dict[str, tuple[float, float]] = {
    "330421001": (0.46, 0.50),  # 魏塘街道, the county seat
    "330421002": (0.58, 0.48),  # 罗星街道, east of the old town
    "330421003": (0.55, 0.33),  # 惠民街道, south-east, development zone
    "330421102": (0.60, 0.15),  # 大云镇
    "330421103": (0.66, 0.74),  # 西塘镇
    "330421105": (0.28, 0.33),  # 干窑镇
    "330421107": (0.48, 0.88),  # 陶庄镇
    "330421111": (0.86, 0.55),  # 姚庄镇
    "330421112": (0.22, 0.68),  # 天凝镇
}
# Towns hosting an industrial park; the first one's village is the biggest rental village.
PARK_TOWNS: tuple[tuple[str, str], ...] = (
    ("330421003", "嘉善经济技术开发区"),
    ("330421111", "姚庄经济开发区"),
    ("330421102", "大云工业园区"),
    ("330421112", "天凝工业园区"),
)


@dataclass(frozen=True)
class AdminLayers:
    """Nested synthetic layers (EPSG:4549) and the facts later stages build on."""

    county: MultiPolygon
    towns: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    micro_grids: gpd.GeoDataFrame
    seats: dict[str, tuple[float, float]]  # town code -> seat (x, y)
    parks: pd.DataFrame  # name, town_code, village_code, x, y


def _seat_sites(county: MultiPolygon, codes: list[str]) -> npt.NDArray[np.float64]:
    minx, miny, maxx, maxy = county.bounds
    sites = []
    for code in codes:
        fx, fy = TOWN_SEATS[code]
        point = shapely.Point(minx + fx * (maxx - minx), miny + fy * (maxy - miny))
        if not county.contains(point):
            point = nearest_points(county, point)[0]
        sites.append(point.coords[0])
    return np.array(sites)


def _order_north_west(geoms: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """Numbering order: north to south in 500 m bands, west to east within a band."""
    centre = shapely.get_coordinates(shapely.centroid(geoms))
    band = -np.floor(centre[:, 1] / 500.0)
    return np.lexsort((centre[:, 0], band))


def _village_sites(
    town: MultiPolygon, seat: npt.NDArray[np.float64], kinds: npt.NDArray[np.str_], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Start communities near the town seat and villages further out."""
    pool = sample_in_polygon(town, 60 * len(kinds), rng)
    near = np.argsort(np.hypot(*(pool - seat).T), kind="stable")
    inner, outer = near[: len(near) // 4], near[len(near) // 4 :]
    sites = np.empty((len(kinds), 2))
    is_community = kinds == "community"
    sites[is_community] = pool[rng.choice(inner, is_community.sum(), replace=False)]
    sites[~is_community] = pool[rng.choice(outer, (~is_community).sum(), replace=False)]
    return sites


@dataclass
class _Plan:
    """Households per village, grid and micro-grid, before any grid geometry."""

    grid_village: npt.NDArray[np.int64]  # village index of each grid
    grid_households: npt.NDArray[np.int64]
    micro_grid: npt.NDArray[np.int64]  # grid index of each micro-grid
    micro_households: npt.NDArray[np.int64]


def _plan_households(kinds: npt.NDArray[np.str_], chief: int, rng: np.random.Generator) -> _Plan:
    weight = np.where(kinds == "community", 1.5, 1.0) * rng.lognormal(0.0, 0.3, len(kinds))
    # The chief rental village is small in households (its people are tenants).
    weight[chief] = 0.0
    grids_per_village = largest_remainder(GRID_COUNT, weight, minimum=2)
    grid_village = np.repeat(np.arange(len(kinds)), grids_per_village)
    low, high = GRID_HOUSEHOLDS
    grid_households = np.clip(np.rint(rng.normal(400, 45, len(grid_village))), low, high).astype(np.int64)
    grid_households[grid_village == chief] = rng.integers(305, 340, 2)
    micro_low, micro_high = MICRO_HOUSEHOLDS
    per_micro = rng.uniform(50.0, 60.0, len(grid_households))
    micro_count = np.clip(
        np.rint(grid_households / per_micro),
        np.ceil(grid_households / micro_high),
        np.floor(grid_households / micro_low),
    ).astype(np.int64)
    micro_households = np.concatenate(
        [
            split_total(int(h), int(m), micro_low, micro_high, rng)
            for h, m in zip(grid_households, micro_count, strict=True)
        ]
    )
    micro_grid = np.repeat(np.arange(len(grid_households)), micro_count)
    return _Plan(grid_village, grid_households, micro_grid, micro_households)


def _frame(
    codes: list[str],
    names: list[str],
    parents: list[str],
    households: npt.ArrayLike,
    attrs: list[dict[str, object]],
    geoms: list[MultiPolygon],
) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": codes,
            "name": names,
            "parent_code": parents,
            "households": np.asarray(households, dtype=np.int64),
            "attrs": attrs,
        },
        geometry=gpd.GeoSeries(geoms, crs=METRIC_CRS),
    )


@dataclass(frozen=True)
class AdminFit:
    """Approximate cells of every level, before the exact coverage is assembled."""

    divisions: Divisions
    town_cells: GeomArray
    village_cells: GeomArray
    grid_cells: GeomArray
    micro_cells: GeomArray  # the leaves
    village_town: npt.NDArray[np.int64]  # town index of each village
    village_sites: npt.NDArray[np.float64]
    seats: dict[str, tuple[float, float]]
    plan: _Plan
    parks: pd.DataFrame
    chief: int  # index of the chief rental village

    @property
    def levels(self) -> list[GeomArray]:
        return [self.micro_cells, self.grid_cells, self.village_cells, self.town_cells]


def fit_admin_cells(county: MultiPolygon, divisions: Divisions, rng: np.random.Generator) -> AdminFit:
    """Fit towns, villages, grids and micro-grids top-down inside ``county``."""
    towns, villages = divisions.towns, divisions.villages
    town_codes = towns["code"].tolist()
    village_town = villages["parent_code"].map({c: i for i, c in enumerate(town_codes)}).to_numpy()
    per_town = np.bincount(village_town, minlength=len(town_codes))
    kinds = villages["kind"].to_numpy()

    # Towns: area roughly proportional to their number of villages.
    town_fit = power_partition(
        county, per_town * rng.lognormal(0.0, 0.15, len(per_town)), rng, init_sites=_seat_sites(county, town_codes)
    )
    seats = {code: (float(x), float(y)) for code, (x, y) in zip(town_codes, town_fit.sites, strict=True)}

    # Villages: urban communities are smaller and start around the seat.
    village_cells = np.empty(len(villages), dtype=object)
    village_sites = np.empty((len(villages), 2))
    for t, town_cell in enumerate(town_fit.cells):
        members = np.flatnonzero(village_town == t)
        size = np.where(kinds[members] == "community", 0.35, 1.0) * rng.lognormal(0.0, 0.3, len(members))
        start = _village_sites(town_cell, np.array(seats[town_codes[t]]), kinds[members], rng)
        fit = power_partition(town_cell, size, rng, init_sites=start)
        village_cells[members] = fit.cells
        village_sites[members] = fit.sites

    parks, chief = _choose_parks(villages, village_town, village_sites, town_codes, rng)
    plan = _plan_households(kinds, chief, rng)

    grid_cells = np.empty(len(plan.grid_households), dtype=object)
    for v in range(len(villages)):
        members = np.flatnonzero(plan.grid_village == v)
        grid_cells[members] = power_partition(
            village_cells[v], plan.grid_households[members], rng, iterations=20, samples_per_part=150
        ).cells
    micro_cells = np.empty(len(plan.micro_households), dtype=object)
    for g in range(len(grid_cells)):
        members = np.flatnonzero(plan.micro_grid == g)
        micro_cells[members] = power_partition(
            grid_cells[g], plan.micro_households[members], rng, iterations=15, samples_per_part=120
        ).cells

    return AdminFit(
        divisions,
        town_fit.cells,
        village_cells,
        grid_cells,
        micro_cells,
        village_town,
        village_sites,
        seats,
        plan,
        parks,
        chief,
    )


def build_admin_layers(fit: AdminFit, faces: GeomArray, face_micro: npt.NDArray[np.int64]) -> AdminLayers:
    """Exact nested layers from the atomic ``faces`` and the micro-grid (leaf) of each face."""
    towns, villages = fit.divisions.towns, fit.divisions.villages
    town_codes = towns["code"].tolist()
    plan, village_town, seats, parks, chief = fit.plan, fit.village_town, fit.seats, fit.parks, fit.chief
    micro_geoms = union_by_label(faces, face_micro, len(fit.micro_cells))
    face_grid = plan.micro_grid[face_micro]
    face_village = plan.grid_village[face_grid]
    grid_geoms = union_by_label(faces, face_grid, len(fit.grid_cells))
    village_geoms = union_by_label(faces, face_village, len(villages))
    town_geoms = union_by_label(faces, village_town[face_village], len(town_codes))
    county_geom = union_by_label(faces, np.zeros(len(faces), dtype=np.int64), 1)[0]

    village_households = np.bincount(plan.grid_village, plan.grid_households, len(villages)).astype(np.int64)
    town_households = np.bincount(village_town, village_households, len(town_codes)).astype(np.int64)
    park_by_village = dict(zip(parks["village_code"], parks["name"], strict=True))
    rental_codes = _rental_villages(villages, fit.village_sites, parks, chief)

    town_frame = _frame(
        town_codes,
        towns["name"].tolist(),
        [COUNTY_CODE] * len(town_codes),
        town_households,
        [{"synthetic": True} for _ in town_codes],
        town_geoms,
    )
    village_frame = _frame(
        villages["code"].tolist(),
        villages["name"].tolist(),
        villages["parent_code"].tolist(),
        village_households,
        [
            {
                "synthetic": True,
                "official_name": row.official_name,
                "kind": row.kind,
                "rental_village": row.code in rental_codes,
                "chief_rental_village": i == chief,
                "industrial_park": park_by_village.get(row.code),
            }
            for i, row in enumerate(villages.itertuples())
        ],
        village_geoms,
    )
    town_names = dict(zip(town_codes, towns["name"], strict=True))
    grid_frame = _child_frame(
        [town_names[t] + v for t, v in zip(villages["parent_code"], villages["name"], strict=True)],
        villages["code"].tolist(),
        plan.grid_village,
        plan.grid_households,
        np.array(grid_geoms, dtype=object),
        "grid",
    )
    # Micro-grids refer to grids by plan position; the grid frame is re-ordered.
    grid_row = np.empty(len(grid_frame), dtype=np.int64)
    grid_row[grid_frame["_gen_index"].to_numpy()] = np.arange(len(grid_frame))
    micro_frame = _child_frame(
        grid_frame["name"].tolist(),
        grid_frame["code"].tolist(),
        grid_row[plan.micro_grid],
        plan.micro_households,
        np.array(micro_geoms, dtype=object),
        "micro",
    )
    return AdminLayers(county_geom, town_frame, village_frame, grid_frame, micro_frame, seats, parks)


def _child_frame(
    prefixes: list[str],
    parent_codes_in: list[str],
    parent_index: npt.NDArray[np.int64],
    households: npt.NDArray[np.int64],
    geoms: npt.NDArray[np.object_],
    level: str,
) -> gpd.GeoDataFrame:
    """Code, name and order children within each parent, north-west first.

    Rows come out grouped by parent in parent order; ``_gen_index`` holds each
    row's position in the input arrays for the caller's bookkeeping.
    """
    digits, label = (3, "第{k}网格") if level == "grid" else (2, "-{k}微网格")
    codes, names, parent_codes, index = [], [], [], []
    for p, parent_code in enumerate(parent_codes_in):
        members = np.flatnonzero(parent_index == p)
        for k, m in enumerate(members[_order_north_west(geoms[members])], start=1):
            codes.append(f"{parent_code}{k:0{digits}d}")
            names.append(prefixes[p] + label.format(k=k))
            parent_codes.append(parent_code)
            index.append(m)
    order = np.array(index, dtype=np.int64)
    frame = _frame(
        codes,
        names,
        parent_codes,
        households[order],
        [{"synthetic": True} for _ in codes],
        list(geoms[order]),
    )
    frame["_gen_index"] = order
    return frame


def _choose_parks(
    villages: pd.DataFrame,
    village_town: npt.NDArray[np.int64],
    sites: npt.NDArray[np.float64],
    town_codes: list[str],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, int]:
    """One industrial park per park town, in a rural village; returns parks and the chief rental village."""
    rows = []
    for town_code, park_name in PARK_TOWNS:
        t = town_codes.index(town_code)
        candidates = np.flatnonzero((village_town == t) & (villages["kind"].to_numpy() == "village"))
        v = int(rng.choice(candidates))
        rows.append(
            {
                "name": park_name,
                "town_code": town_code,
                "village_code": villages["code"].iat[v],
                "x": float(sites[v, 0]),
                "y": float(sites[v, 1]),
                "village_index": v,
            }
        )
    parks = pd.DataFrame(rows)
    return parks, int(parks["village_index"].iat[0])


def _rental_villages(
    villages: pd.DataFrame, sites: npt.NDArray[np.float64], parks: pd.DataFrame, chief: int
) -> list[str]:
    """出租大村: each park's own village plus the rural village nearest the first park."""
    codes = parks["village_code"].tolist()
    rural = np.flatnonzero(villages["kind"].to_numpy() == "village")
    rural = rural[~np.isin(rural, parks["village_index"].to_numpy())]
    gap = np.hypot(*(sites[rural] - sites[chief]).T)
    codes.append(villages["code"].iat[int(rural[np.argmin(gap)])])
    return codes
