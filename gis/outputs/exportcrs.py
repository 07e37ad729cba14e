"""The CRS of an export: WGS-84, GCJ-02 or CGCS2000. GCJ-02 has no EPSG code; files in GCJ-02 carry
a WGS-84-shaped CRS named "GCJ-02" so that GIS software shows what the coordinates are instead of
silently claiming WGS-84."""

from __future__ import annotations

import enum

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gis.outputs.exportquery import ExportError
from gis.spatial.crs import from_wgs84


class ExportCRS(enum.StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"
    cgcs2000 = "cgcs2000"


def _gcj02_crs() -> pyproj.CRS:
    # A datum of its own name, so that GDAL does not recognise the CRS as EPSG:4326 and relabel it.
    return pyproj.CRS.from_json_dict(
        {
            "type": "GeographicCRS",
            "name": "GCJ-02",
            "datum": {
                "type": "GeodeticReferenceFrame",
                "name": "GCJ-02 (WGS 84 with the Chinese state offset)",
                "ellipsoid": {"name": "WGS 84", "semi_major_axis": 6378137, "inverse_flattening": 298.257223563},
            },
            "coordinate_system": {
                "subtype": "ellipsoidal",
                "axis": [
                    {"name": "Geodetic latitude", "abbreviation": "Lat", "direction": "north", "unit": "degree"},
                    {"name": "Geodetic longitude", "abbreviation": "Lon", "direction": "east", "unit": "degree"},
                ],
            },
            "remarks": "Amap/Tencent coordinates; no EPSG code exists",
        }
    )


OUTPUT_CRS = {
    ExportCRS.wgs84: pyproj.CRS.from_epsg(4326),
    ExportCRS.gcj02: _gcj02_crs(),
    ExportCRS.cgcs2000: pyproj.CRS.from_epsg(4490),
}


_CRS_ALIASES = {"epsg:4326": "wgs84", "4326": "wgs84", "epsg:4490": "cgcs2000", "4490": "cgcs2000"}


def parse_export_crs(value: str) -> ExportCRS:
    text = value.strip().lower()
    try:
        return ExportCRS(_CRS_ALIASES.get(text, text))
    except ValueError:
        raise ExportError(
            f"unknown export crs {value!r}; use wgs84 (EPSG:4326), gcj02 or cgcs2000 (EPSG:4490)"
        ) from None


def to_output_crs(gdf: gpd.GeoDataFrame, crs: ExportCRS) -> gpd.GeoDataFrame:
    if crs is ExportCRS.wgs84:
        return gdf
    if crs is ExportCRS.cgcs2000:
        # CGCS2000 and WGS-84 agree to a few centimetres; PROJ's 4326->4490 step is a no-op.
        return gdf.set_crs(OUTPUT_CRS[crs], allow_override=True)

    def shift(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        out[:, 0], out[:, 1] = from_wgs84(coords[:, 0], coords[:, 1], "gcj02")
        return out

    moved = shapely.transform(np.asarray(gdf.geometry.array), shift)
    return gpd.GeoDataFrame(gdf.drop(columns="geometry"), geometry=moved, crs=OUTPUT_CRS[crs])
