"""Layers to files: GeoPackage, GeoJSON, zipped Shapefile, CSV and XLSX, in WGS-84, GCJ-02 or CGCS2000.

Exports read the base tables and mask personal data in Python with ``gis.core.privacy`` unless the
role may see it (dispatcher and above), so a file never carries more than its reader may see.
Boundary layers are those of the generation in force, or of the one in force at ``as_of``.

Format notes that shape the code:

* Shapefile field names are at most 10 characters; longer names are shortened here by a fixed,
  documented rule and the zip carries ``fields.csv`` (short name -> column) and ``README.txt``.
  DBF has no date-time type, so times are written as ISO-8601 text.
* Excel has no time zones: times go out as China Standard Time (UTC+8), which the sheet says.
* GCJ-02 has no EPSG code; files in GCJ-02 carry a WGS-84-shaped CRS named "GCJ-02" so that GIS
  software shows what the coordinates are instead of silently claiming WGS-84.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
import sqlalchemy as sa

from gis.core.privacy import (
    ID_CARD_FIELDS,
    NAME_FIELDS,
    PHONE_FIELDS,
    mask_id_card,
    mask_name,
    mask_phone,
    role_sees_personal_data,
)
from gis.core.timeparse import TimeValueError, check_window
from gis.incidents.filter import FilterError, IncidentFilter
from gis.people.scope import WHOLE_COUNTY
from gis.spatial.areas import IN_GENERATION, Conn, current_generation, generation_at
from gis.spatial.crs import from_wgs84

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "UTC+8")
XLSX_CELL_LIMIT = 32767
SHP_NAME_LIMIT = 10


class ExportError(ValueError):
    """A bad export request: unknown layer, format or CRS, or a filter that does not apply."""


class ExportFormat(enum.StrEnum):
    gpkg = "gpkg"
    geojson = "geojson"
    shp = "shp"
    csv = "csv"
    xlsx = "xlsx"


class ExportCRS(enum.StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"
    cgcs2000 = "cgcs2000"


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

# Boundary layers: public name -> value of areas.layer.
AREA_LAYERS = {
    "counties": "county",
    "towns": "town",
    "villages": "village",
    "grids": "grid",
    "micro_grids": "micro_grid",
    "stations": "station",
    "beats": "beat",
}
ASSIGNED = ("town_code", "village_code", "grid_code", "micro_grid_code", "station_code", "beat_code", "assign_status")
# Point layers: columns in output order (the same as the ogc views) and the time column, if any.
POINT_LAYERS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "buildings": (
        (
            "id", "code", "name", "floors", "households", "residents", "new_residents", "is_rental",
            "landlord_name", "landlord_phone", "landlord_id_card", "tenants", "rooms", "escape_window",
            "ebike_charging", "wiring", "risk_level", "last_inspected_at", *ASSIGNED,
        ),
        None,
    ),
    "addresses": (
        (
            "id", "full_text", "road", "house_no", "building_no", "unit_no", "room_no", "group_no",
            "precision", "building_id", *ASSIGNED,
        ),
        None,
    ),
    "hazards": (
        (
            "id", "category", "severity", "status", "description", "found_at", "rectify_by",
            "rectified_at", "building_id", *ASSIGNED,
        ),
        "found_at",
    ),
    "incidents": (
        (
            "id", "category", "source", "reported_at", "address_text", "description", "reporter_name",
            "reporter_phone", "status", "deadline_at", "escalation_level", "escalated_at", "closed_at",
            *ASSIGNED,
        ),
        "reported_at",
    ),
}  # fmt: skip
LAYER_NAMES = (*AREA_LAYERS, *POINT_LAYERS)


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


def parse_format(value: str) -> ExportFormat:
    try:
        return ExportFormat(value.strip().lower())
    except ValueError:
        raise ExportError(f"unknown export format {value!r}; use one of {', '.join(ExportFormat)}") from None


_CRS_ALIASES = {"epsg:4326": "wgs84", "4326": "wgs84", "epsg:4490": "cgcs2000", "4490": "cgcs2000"}


def parse_export_crs(value: str) -> ExportCRS:
    text = value.strip().lower()
    try:
        return ExportCRS(_CRS_ALIASES.get(text, text))
    except ValueError:
        raise ExportError(
            f"unknown export crs {value!r}; use wgs84 (EPSG:4326), gcj02 or cgcs2000 (EPSG:4490)"
        ) from None


def check_layer_name(layer: str) -> str:
    if layer not in LAYER_NAMES:
        raise ExportError(f"unknown layer {layer!r}; layers are {', '.join(LAYER_NAMES)}")
    return layer


def time_column(layer: str) -> str | None:
    return POINT_LAYERS[layer][1] if layer in POINT_LAYERS else None


def point_filter(
    layer: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    incidents: IncidentFilter | None = None,
    *,
    error: type[ExportError] = ExportError,
) -> tuple[str, dict[str, Any]]:
    """The condition (``TRUE`` for none) and parameters selecting a point layer's rows: the time
    window ``start``/``end`` (or that of ``incidents``) on the layer's time column; for the
    incidents layer the whole incident filter (``gis.incidents.filter``), which other layers refuse."""
    flt = incidents or IncidentFilter()
    try:
        check_window(start or flt.start, end or flt.end)
        flt = flt.replace(start=start or flt.start, end=end or flt.end)
    except (TimeValueError, FilterError) as exc:
        raise error(str(exc)) from None
    if layer == "incidents":
        return flt.where("")
    column = time_column(layer)
    if not flt.current().unscoped():
        raise error(f"incident filters apply to the incidents layer, not {layer!r}")
    if (flt.start or flt.end) and column is None:
        raise error(f"layer {layer!r} has no time column; start/end apply to incidents and hazards")
    # The caller's scope holds for every point layer: they all carry the assignment columns.
    scope_cond, params = flt.scope.where("")
    conds = [] if flt.scope.whole else [scope_cond]
    for key, op in (("start", ">="), ("end", "<")):
        if getattr(flt, key) is not None:
            conds.append(f"{column} {op} :{key}")
            params[key] = getattr(flt, key)
    return " AND ".join(conds) or "TRUE", params


def layer_query(
    conn: Conn,
    layer: str,
    *,
    as_of: dt.datetime | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    incidents: IncidentFilter | None = None,
) -> tuple[str, dict[str, Any]]:
    """SQL (geometry as WKB in column ``wkb``) and parameters for one layer's rows, unmasked."""
    check_layer_name(layer)
    if layer in AREA_LAYERS:
        if start or end or (incidents is not None and not incidents.unscoped()):
            raise ExportError(f"layer {layer!r} is a boundary layer; use as_of, not start/end")
        # A scoped caller gets the units inside the scope (a town key: its town, its villages, ...).
        in_scope, scope_params = (incidents.scope if incidents is not None else WHOLE_COUNTY).code_where("code")
        generation = current_generation(conn) if as_of is None else generation_at(conn, as_of)
        if generation is None:
            when = "now" if as_of is None else f"at {as_of.isoformat()}"
            raise ExportError(f"no boundary generation was in force {when}")
        # Identifiers come from the fixed registry above, never from the caller.
        sql = (
            "SELECT code, name, parent_code, households, gen_from AS generation, ST_AsBinary(geom) AS wkb "  # noqa: S608
            f"FROM areas WHERE layer = :layer AND {IN_GENERATION} AND {in_scope} ORDER BY code"
        )
        return sql, {"layer": AREA_LAYERS[layer], "g": generation, **scope_params}
    if as_of is not None:
        raise ExportError(f"as_of applies to boundary layers, not {layer!r}")
    columns, _ = POINT_LAYERS[layer]
    where, params = point_filter(layer, start, end, incidents)
    sql = f"SELECT {', '.join(columns)}, ST_AsBinary(geom) AS wkb FROM {layer} WHERE {where} ORDER BY id"  # noqa: S608
    return sql, params


def mask_frame(frame: pd.DataFrame, role: str | None) -> pd.DataFrame:
    """Personal fields masked with the rules of gis.core.privacy, unless ``role`` may see them."""
    if role_sees_personal_data(role):
        return frame
    out = frame.copy()
    for fields, fn in ((PHONE_FIELDS, mask_phone), (ID_CARD_FIELDS, mask_id_card), (NAME_FIELDS, mask_name)):
        for column in fields & set(out.columns):
            out[column] = out[column].map(lambda v, f=fn: f(v) if isinstance(v, str) else v)
    return out


def load_layer_frame(
    conn: Conn,
    layer: str,
    *,
    role: str | None = "viewer",
    as_of: dt.datetime | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    incidents: IncidentFilter | None = None,
) -> gpd.GeoDataFrame:
    """One layer as a GeoDataFrame in WGS-84, masked for ``role``."""
    sql, params = layer_query(conn, layer, as_of=as_of, start=start, end=end, incidents=incidents)
    result = conn.execute(sa.text(sql), params)
    columns = list(result.keys())[:-1]  # the last column is the geometry
    rows = result.all()
    frame = pd.DataFrame([tuple(r)[:-1] for r in rows], columns=columns)
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else np.array([], dtype=object)
    gdf = gpd.GeoDataFrame(mask_frame(frame, role), geometry=geoms, crs="EPSG:4326")
    return gdf


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


# --- Shapefile field names ------------------------------------------------------------------------


def shapefile_field_names(columns: list[str]) -> dict[str, str]:
    """Column -> DBF field name (<= 10 characters, unique ignoring case).

    Rule: names of up to 10 characters stay; longer names are cut to 10; if that collides with an
    earlier field, the name is cut to 7 and given ``_`` plus a two-digit number (01, 02, ...).
    """
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for column in columns:
        short = column[:SHP_NAME_LIMIT]
        number = 0
        while short.lower() in taken:
            number += 1
            short = f"{column[:7]}_{number:02d}"
        taken.add(short.lower())
        mapping[column] = short
    return mapping


SHP_README = """{layer}.shp - exported by gridmap on {when}

Coordinate reference system: {crs} (see {layer}.prj)
Text encoding: UTF-8 (see {layer}.cpg)
Features: {count}

Shapefile (dBASE) field names are limited to 10 characters. gridmap shortens longer column
names by one fixed rule: names of up to 10 characters are kept; longer names are cut to the first
10 characters; if two names would then clash, the later one is cut to 7 characters followed by
"_" and a two-digit number. fields.csv lists every field with its full column name.

Date-time values are ISO-8601 text with their UTC offset (dBASE has no date-time type).
dBASE text fields hold at most 254 bytes (about 84 Chinese characters); longer text such as
long descriptions is cut there. Use GeoPackage for the full text.
{masking}
"""

_MASKED_NOTE = "Personal data (names, phone numbers, ID-card numbers) are masked.\n"
_UNMASKED_NOTE = "This file contains UNMASKED personal data: handle under the PIPL and delete when done.\n"


# --- writers ------------------------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.isoformat() if not pd.isna(value) else None
    return value


def _datetimes_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if column != "geometry" and pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(_iso).astype(object)
    return out


def _write_shapefile(gdf: gpd.GeoDataFrame, layer: str, out: Path, crs: ExportCRS, masked: bool) -> None:
    columns = [c for c in gdf.columns if c != "geometry"]
    mapping = shapefile_field_names(columns)
    renamed = _datetimes_as_text(gdf).rename(columns=mapping)
    with tempfile.TemporaryDirectory(prefix="gridmap-shp-") as tmp:
        folder = Path(tmp)
        renamed.to_file(folder / f"{layer}.shp", driver="ESRI Shapefile", engine="pyogrio", encoding="UTF-8")
        with (folder / "fields.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["field", "column"])
            writer.writerows((short, column) for column, short in mapping.items())
        (folder / "README.txt").write_text(
            SHP_README.format(
                layer=layer,
                when=dt.datetime.now(CHINA_TZ).isoformat(timespec="seconds"),
                crs=OUTPUT_CRS[crs].name,
                count=len(gdf),
                masking=_MASKED_NOTE if masked else _UNMASKED_NOTE,
            ),
            encoding="utf-8",
        )
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.iterdir()):
                zf.write(path, path.name)


def _xy_columns(gdf: gpd.GeoDataFrame) -> tuple[pd.Series, pd.Series]:
    """Point coordinates, or a point inside each polygon (a label point) for boundary layers."""
    points = gdf.geometry if (gdf.geom_type == "Point").all() else gdf.geometry.representative_point()
    return points.x.round(7), points.y.round(7)


def _write_csv(gdf: gpd.GeoDataFrame, out: Path) -> None:
    frame = _datetimes_as_text(pd.DataFrame(gdf.drop(columns="geometry")))
    if len(gdf):
        frame["lon"], frame["lat"] = _xy_columns(gdf)
    else:
        frame["lon"], frame["lat"] = [], []
    # GDAL and QGIS read a column named WKT as the geometry; the BOM makes Excel read UTF-8.
    frame["WKT"] = shapely.to_wkt(np.asarray(gdf.geometry.array), rounding_precision=7) if len(gdf) else []
    frame.to_csv(out, index=False, encoding="utf-8-sig")


def _excel_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        if pd.isna(value):
            return None
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert(CHINA_TZ).tz_localize(None)
        return stamp.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_xlsx(gdf: gpd.GeoDataFrame, layer: str, out: Path, crs: ExportCRS, masked: bool) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    frame = pd.DataFrame(gdf.drop(columns="geometry"))
    if len(gdf):
        frame["lon"], frame["lat"] = _xy_columns(gdf)
        wkt = shapely.to_wkt(np.asarray(gdf.geometry.array), rounding_precision=7)
        frame["wkt"] = [w if len(w) <= XLSX_CELL_LIMIT else None for w in wkt]
    else:
        frame["lon"], frame["lat"], frame["wkt"] = [], [], []
    book = Workbook(write_only=True)
    sheet = book.create_sheet(layer)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in frame.columns:
        cell = WriteOnlyCell(sheet, value=str(name))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in frame.itertuples(index=False, name=None):
        sheet.append([_excel_value(v) for v in row])
    about = book.create_sheet("about")
    for line in (
        ("layer", layer),
        ("features", len(gdf)),
        ("crs", OUTPUT_CRS[crs].name),
        ("coordinates", "lon/lat: the point, or a point inside the polygon; wkt: the full geometry"),
        ("times", "China Standard Time (UTC+8)"),
        ("wkt", f"empty where the geometry exceeds Excel's {XLSX_CELL_LIMIT}-character cell limit"),
        ("personal data", "masked" if masked else "UNMASKED: handle under the PIPL"),
        ("exported", dt.datetime.now(CHINA_TZ).replace(tzinfo=None).isoformat(timespec="seconds")),
    ):
        about.append(list(line))
    book.save(out)


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
