"""Reading import files into a table of raw values, with the row numbers a person sees.

CSV files from Excel in China come in GBK/GB18030 as often as in UTF-8 (with or without a BOM),
so the encoding is detected: strict UTF-8 (BOM allowed) first, then GB18030, which is a superset
of GBK. A file that is neither is refused with the position of the first bad byte.

Row numbers are spreadsheet rows: the header is row 1, the first record row 2 (blank lines count,
as Excel shows them). For GeoJSON and GeoPackage the row is the feature number, starting at 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

FileFormat = Literal["csv", "xlsx", "geojson", "gpkg"]
FORMATS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
}


class ImportFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, columns); nothing was stored."""


@dataclass
class RawTable:
    """A file's records as read: ``frame`` columns are the file's own, values untouched."""

    path: Path
    format: FileFormat
    frame: pd.DataFrame
    rows: npt.NDArray[np.int64]  # the person-visible row number of each record
    encoding: str | None = None
    # Vector files: point coordinates from the geometry (NaN where missing or not a point).
    geom_lon: npt.NDArray[np.float64] | None = None
    geom_lat: npt.NDArray[np.float64] | None = None
    geom_problem: npt.NDArray[np.object_] | None = None  # reason per row, None where fine
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)


def file_format(path: Path) -> FileFormat:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImportFileError(f"{path.name}: unknown file type {path.suffix!r}; accepted: {', '.join(sorted(FORMATS))}")
    return fmt


def read_table(path: Path, *, encoding: str | None = None, numeric: tuple[str, ...] = ()) -> RawTable:
    """Read ``path``; ``numeric`` names columns to parse as numbers when they all are (fast path)."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    fmt = file_format(path)
    if fmt == "csv":
        return _read_csv(path, encoding, numeric)
    if fmt == "xlsx":
        return _read_xlsx(path)
    return _read_vector(path, fmt)


def detect_encoding(data: bytes) -> str:
    """``utf-8-sig`` or ``gb18030``; raises ImportFileError naming the first undecodable byte."""
    try:
        data.decode("utf-8-sig")
        return "utf-8-sig"
    except UnicodeDecodeError as utf8_error:
        try:
            data.decode("gb18030")
            return "gb18030"
        except UnicodeDecodeError:
            raise ImportFileError(_decode_message(data, "UTF-8 nor GB18030/GBK", utf8_error)) from None


def _decode_message(data: bytes, what: str, exc: UnicodeDecodeError) -> str:
    line = data.count(b"\n", 0, exc.start) + 1
    return (
        f"the file is neither {what} text: undecodable byte 0x{data[exc.start]:02x} at offset {exc.start} "
        f"(line {line}); save it as CSV UTF-8 or pass --encoding"
    )


def _read_csv(path: Path, encoding: str | None, numeric: tuple[str, ...]) -> RawTable:
    data = path.read_bytes()
    if encoding is None:
        encoding = detect_encoding(data)
    else:
        try:
            data.decode(encoding)
        except LookupError:
            raise ImportFileError(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            raise ImportFileError(_decode_message(data, encoding, exc)) from None
    if not data.strip():
        raise ImportFileError(f"{path.name}: the file is empty")
    header = pd.read_csv(path, encoding=encoding, nrows=0).columns
    # object, not str: pandas' string dtype costs several times more to build for the same values.
    dtypes = {c: object for c in header if c not in numeric}
    try:
        frame = pd.read_csv(
            path,
            encoding=encoding,
            dtype=dtypes,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise ImportFileError(f"{path.name}: not a readable CSV file: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    rows = np.arange(2, len(frame) + 2, dtype=np.int64)
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame, rows = frame.loc[~blank].reset_index(drop=True), rows[~blank]
    return RawTable(path, "csv", frame, rows, encoding=encoding)


def _cell_text(value: object) -> object:
    """Spreadsheet cells arrive typed; numbers that are really identifiers must not become floats."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _read_xlsx(path: Path) -> RawTable:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise ImportFileError(f"{path.name}: not a readable XLSX workbook: {exc}") from None
    try:
        sheet = book.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header = next(values, None)
        if header is None:
            raise ImportFileError(f"{path.name}: the first sheet is empty")
        names = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
        records = [tuple(_cell_text(v) for v in row) for row in values]
    finally:
        book.close()
    width = len(names)
    records = [r[:width] + (None,) * (width - len(r)) for r in records]
    frame = pd.DataFrame.from_records(records, columns=names).astype(object)
    frame = frame.where(frame.notna(), None)
    for col in frame.columns:
        # Empty strings are empty cells; strings stay strings, datetimes stay datetimes.
        frame[col] = [None if isinstance(v, str) and not v.strip() else v for v in frame[col]]
    rows = np.arange(2, len(frame) + 2, dtype=np.int64)
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame, rows = frame.loc[~blank].reset_index(drop=True), rows[~blank]
    return RawTable(path, "xlsx", frame, rows)


def _read_vector(path: Path, fmt: FileFormat) -> RawTable:
    import pyogrio

    try:
        gdf = pyogrio.read_dataframe(path, datetime_as_string=True)
    except Exception as exc:  # pyogrio raises several DataSource/field errors
        raise ImportFileError(f"{path.name}: not a readable {fmt} file: {exc}") from None
    notes = []
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        notes.append(f"reprojected from {gdf.crs.to_string()} to EPSG:4326")
        gdf = gdf.to_crs(4326)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    n = len(geoms)
    problem = np.full(n, None, dtype=object)
    kinds = shapely.get_type_id(geoms)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    problem[missing] = "feature has no geometry"
    multi = kinds == shapely.GeometryType.MULTIPOINT
    single_multi = multi & (shapely.get_num_geometries(geoms) == 1)
    geoms = np.where(single_multi, shapely.get_geometry(geoms, 0), geoms)
    not_point = ~missing & (shapely.get_type_id(geoms) != shapely.GeometryType.POINT)
    problem[not_point] = [f"geometry is a {g.geom_type}, expected a Point" for g in geoms[not_point]]
    ok = ~missing & ~not_point
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    lon[ok] = shapely.get_x(geoms[ok])
    lat[ok] = shapely.get_y(geoms[ok])
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    rows = np.arange(1, n + 1, dtype=np.int64)
    return RawTable(path, fmt, frame, rows, geom_lon=lon, geom_lat=lat, geom_problem=problem, notes=notes)
