"""The file writers needing more than GDAL: zipped Shapefile (10-character field names by a fixed,
documented rule, ``fields.csv`` and ``README.txt``; times as ISO-8601 text, DBF has no date-time
type), CSV and XLSX (times in China Standard Time, which the sheet says; Excel has no time zones)."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.outputs.exportcrs import OUTPUT_CRS, ExportCRS

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "UTC+8")
XLSX_CELL_LIMIT = 32767
SHP_NAME_LIMIT = 10


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
