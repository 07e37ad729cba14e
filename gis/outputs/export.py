"""Layers to files: GeoPackage, GeoJSON, zipped Shapefile, CSV and XLSX, in WGS-84, GCJ-02 or CGCS2000.

Exports read the base tables and mask personal data in Python with ``gis.core.privacy`` unless the
role may see it (dispatcher and above), so a file never carries more than its reader may see.
Boundary layers are those of the generation in force, or of the one in force at ``as_of``.

This module is the entry (formats, ``export_layer``); by job: what is selected and masked is
gis/outputs/exportquery.py, the CRS gis/outputs/exportcrs.py, the Shapefile, CSV and XLSX writers
gis/outputs/exportfiles.py (their format notes are there).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from gis.core.privacy import role_sees_personal_data
from gis.incidents.filter import IncidentFilter
from gis.outputs.exportcrs import ExportCRS, parse_export_crs, to_output_crs
from gis.outputs.exportfiles import _write_csv, _write_shapefile, _write_xlsx
from gis.outputs.exportquery import ExportError, check_layer_name, load_layer_frame
from gis.spatial.areas import Conn


class ExportFormat(enum.StrEnum):
    gpkg = "gpkg"
    geojson = "geojson"
    shp = "shp"
    csv = "csv"
    xlsx = "xlsx"


FILE_SUFFIX = {
    ExportFormat.gpkg: ".gpkg",
    ExportFormat.geojson: ".geojson",
    ExportFormat.shp: ".zip",
    ExportFormat.csv: ".csv",
    ExportFormat.xlsx: ".xlsx",
}
MEDIA_TYPES = {
    ExportFormat.gpkg: "application/geopackage+sqlite3",
    ExportFormat.geojson: "application/geo+json",
    ExportFormat.shp: "application/zip",
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def parse_format(value: str) -> ExportFormat:
    try:
        return ExportFormat(value.strip().lower())
    except ValueError:
        raise ExportError(f"unknown export format {value!r}; use one of {', '.join(ExportFormat)}") from None


@dataclass(frozen=True)
class ExportResult:
    path: Path
    layer: str
    format: ExportFormat
    crs: ExportCRS
    count: int
    masked: bool


def write_frame(gdf: gpd.GeoDataFrame, layer: str, fmt: ExportFormat, out: Path, crs: ExportCRS, masked: bool) -> None:
    """Write a WGS-84 frame in ``fmt`` and ``crs`` to ``out`` (a .zip for Shapefile)."""
    gdf = to_output_crs(gdf, crs)
    if fmt is ExportFormat.gpkg:
        # GeoPackage 1.2 opens without warnings in older GDAL/QGIS (Debian's GDAL 3.6, for one).
        gdf.to_file(out, driver="GPKG", layer=layer, engine="pyogrio", dataset_options={"VERSION": "1.2"})
    elif fmt is ExportFormat.geojson:
        # RFC 7946 mode would force WGS-84; the files say their CRS instead.
        gdf.to_file(out, driver="GeoJSON", engine="pyogrio", layer=layer)
    elif fmt is ExportFormat.shp:
        _write_shapefile(gdf, layer, out, crs, masked)
    elif fmt is ExportFormat.csv:
        _write_csv(gdf, out)
    else:
        _write_xlsx(gdf, layer, out, crs, masked)


def export_layer(
    conn: Conn,
    layer: str,
    fmt: str | ExportFormat,
    out: str | Path,
    *,
    crs: str | ExportCRS = ExportCRS.wgs84,
    role: str | None = "viewer",
    as_of: dt.datetime | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    incidents: IncidentFilter | None = None,
) -> ExportResult:
    """Export one layer to a file; personal data are masked unless ``role`` is dispatcher or above.
    ``incidents`` filters the incidents layer (``gis.incidents.filter``)."""
    check_layer_name(layer)
    fmt = parse_format(fmt) if isinstance(fmt, str) else fmt
    out_crs = parse_export_crs(crs) if isinstance(crs, str) else crs
    path = Path(out)
    if not path.parent.is_dir():
        raise ExportError(f"output folder {str(path.parent)!r} does not exist")
    gdf = load_layer_frame(conn, layer, role=role, as_of=as_of, start=start, end=end, incidents=incidents)
    masked = not role_sees_personal_data(role)
    path.unlink(missing_ok=True)  # GDAL refuses to overwrite some formats
    write_frame(gdf, layer, fmt, path, out_crs, masked)
    return ExportResult(path, layer, fmt, out_crs, len(gdf), masked)
