"""Synthetic police layers: ~10 stations (派出所) split into beats (警格).

Beats are an independent coverage of the county fitted from their own seed
points, so their edges do not follow the grid edges: the product must cope
with two hierarchies that cut across each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
from shapely.geometry import MultiPolygon

from demo.jiashan.allocation import largest_remainder
from demo.jiashan.coverage import GeomArray, union_by_label
from demo.jiashan.layers import METRIC_CRS
from demo.jiashan.outline import COUNTY_CODE
from demo.jiashan.partition import power_partition

DEVELOPMENT_ZONE_STATION = "开发区派出所"
BEAT_RANGE = (120, 141)  # drawn total number of beats, upper bound exclusive


@dataclass(frozen=True)
class PoliceLayers:
    stations: gpd.GeoDataFrame
    beats: gpd.GeoDataFrame


@dataclass(frozen=True)
class PoliceFit:
    """Approximate station and beat cells, before the exact coverage is assembled."""

    names: list[str]
    codes: list[str]
    town_codes: list[str | None]
    station_cells: GeomArray
    beat_cells: GeomArray  # the leaves
    beat_station: npt.NDArray[np.int64]

    @property
    def levels(self) -> list[GeomArray]:
        return [self.beat_cells, self.station_cells]


def station_name(town_name: str) -> str:
    """'魏塘街道' -> '魏塘派出所', '大云镇' -> '大云派出所'."""
    for suffix in ("街道", "镇", "乡"):
        if town_name.endswith(suffix):
            return town_name[: -len(suffix)] + "派出所"
    return town_name + "派出所"


def fit_police_cells(
    county: MultiPolygon,
    town_names: dict[str, str],
    seats: dict[str, tuple[float, float]],
    rng: np.random.Generator,
) -> PoliceFit:
    """One station per town plus a development-zone station; beats inside each station."""
    codes = list(seats)
    names = [station_name(town_names[c]) for c in codes] + [DEVELOPMENT_ZONE_STATION]
    seat_xy = np.array([seats[c] for c in codes])
    # The zone station sits between the two south-eastern subdistrict seats.
    between = (np.array(seats["330421002"]) + np.array(seats["330421003"])) / 2.0
    sites = np.vstack([seat_xy, between + rng.normal(0.0, 800.0, 2)])
    size = rng.lognormal(0.0, 0.2, len(sites))
    size[-1] *= 0.5
    station_fit = power_partition(county, size, rng, init_sites=sites)
    station_codes = [f"{COUNTY_CODE}P{k:02d}" for k in range(1, len(sites) + 1)]

    beat_total = int(rng.integers(*BEAT_RANGE))
    per_station = largest_remainder(beat_total, [c.area for c in station_fit.cells], minimum=6)
    beat_station = np.repeat(np.arange(len(sites)), per_station)
    beat_cells = np.empty(len(beat_station), dtype=object)
    for s, cell in enumerate(station_fit.cells):
        fit = power_partition(cell, rng.lognormal(0.0, 0.35, int(per_station[s])), rng, iterations=25)
        beat_cells[beat_station == s] = fit.cells
    return PoliceFit(names, station_codes, [*codes, None], station_fit.cells, beat_cells, beat_station)


def build_police_layers(fit: PoliceFit, faces: GeomArray, face_beat: npt.NDArray[np.int64]) -> PoliceLayers:
    """Exact station and beat layers from the atomic ``faces`` and the beat of each face."""
    names, station_codes, station_of_beat = fit.names, fit.codes, fit.beat_station
    beat_geoms = union_by_label(faces, face_beat, len(fit.beat_cells))
    station_geoms = union_by_label(faces, station_of_beat[face_beat], len(names))
    per_station = np.bincount(station_of_beat, minlength=len(names))

    beat_codes, beat_names, counters = [], [], [0] * len(names)
    for s in station_of_beat:
        counters[s] += 1
        beat_codes.append(f"{station_codes[s]}{counters[s]:02d}")
        beat_names.append(f"{names[s]}第{counters[s]}警格")
    stations = gpd.GeoDataFrame(
        {
            "code": station_codes,
            "name": names,
            "parent_code": [COUNTY_CODE] * len(names),
            "attrs": [
                {"synthetic": True, "town_code": fit.town_codes[s], "beats": int(per_station[s])}
                for s in range(len(names))
            ],
        },
        geometry=gpd.GeoSeries(station_geoms, crs=METRIC_CRS),
    )
    beats = gpd.GeoDataFrame(
        {
            "code": beat_codes,
            "name": beat_names,
            "parent_code": [station_codes[s] for s in station_of_beat],
            "attrs": [{"synthetic": True} for _ in beat_codes],
        },
        geometry=gpd.GeoSeries(beat_geoms, crs=METRIC_CRS),
    )
    return PoliceLayers(stations, beats)
