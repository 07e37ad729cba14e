"""Reading boundary layers that planners upload, and writing drafts back out for QGIS.

Accepted: GeoJSON, GeoPackage, KML, and zipped Shapefiles (with .prj and .cpg; attributes in GBK
are common in Chinese GIS shops). Everything comes out as EPSG:4326 polygons with the columns
``code, name, parent_code, households, attrs``.

Uploads are untrusted: archives are checked for size, member count, compression ratio (zip
bombs) and member names (path traversal, links) before anything is extracted, and the CRS must
be known. Data in GCJ-02 (Amap and most Chinese web maps) carries a WGS-84 label or none at all,
so the uploader must declare it; it is then converted with gis.spatial.crs.
"""

from __future__ import annotations

import io
import math
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gis.spatial.crs import InputCRS, geometry_to_wgs84, parse_crs

MAX_ZIP_MEMBERS = 200
MAX_ZIP_RATIO = 200  # uncompressed/compressed per member; real shapefiles compress ~3-10x
SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".kml": "kml", ".zip": "zip"}
CODE_ALIASES = ("code", "编码", "网格编码", "代码")
NAME_ALIASES = ("name", "名称", "网格名称")
PARENT_ALIASES = ("parent_code", "parent_cod", "parent", "上级编码")  # Shapefiles cut names at 10
HOUSEHOLD_ALIASES = ("households", "户数")
EXPORT_FORMATS = ("gpkg", "geojson")


class UploadError(ValueError):
    """An upload that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 100 * 1024 * 1024
    max_members: int = MAX_ZIP_MEMBERS
    max_ratio: int = MAX_ZIP_RATIO


def file_kind(filename: str) -> str:
    kind = SUFFIXES.get(Path(filename).suffix.lower())
    if kind is None:
        raise UploadError(f"{filename}: unsupported file type; send one of {', '.join(sorted(SUFFIXES))}")
    return kind


def read_upload(
    data: bytes,
    filename: str,
    *,
    declared_crs: str | None = None,
    code_column: str | None = None,
    encoding: str | None = None,
    limits: UploadLimits | None = None,
) -> gpd.GeoDataFrame:
    """Parse an uploaded file into polygons in EPSG:4326 with code/name/parent_code/households/attrs.

    ``declared_crs`` (wgs84|gcj02|bd09) overrides a missing or WGS-84-labelled CRS: data digitised
    on Amap is GCJ-02 whatever its label says. ``encoding`` overrides the attribute encoding of a
    Shapefile without a .cpg.
    """
    limits = limits or UploadLimits()
    if len(data) > limits.max_bytes:
        raise UploadError(f"{filename}: {len(data)} bytes is over the upload limit of {limits.max_bytes} bytes")
    if not data:
        raise UploadError(f"{filename}: the file is empty")
    declared = parse_crs(declared_crs) if declared_crs else None
    kind = file_kind(filename)
    with tempfile.TemporaryDirectory(prefix="gridmap-upload-") as tmp:
        folder = Path(tmp)
        if kind == "zip":
            sources = _extract_zip(data, filename, folder, limits)
        else:
            path = folder / f"upload{Path(filename).suffix.lower()}"
            path.write_bytes(data)
            sources = [(filename, path)]
        frames = [_read_source(label, path, encoding) for label, path in sources]
    frames = [f for f in frames if len(f)]
    if not frames:
        raise UploadError(f"{filename}: no features with a geometry")
    crs = _common_crs(frames, filename)
    gdf = pd.concat([f for _, f in frames], ignore_index=True)
    gdf = gpd.GeoDataFrame(gdf, geometry="geometry", crs=crs)
    gdf = _to_wgs84(gdf, filename, crs, declared)
    return _normalise(gdf, filename, code_column)


def _extract_zip(data: bytes, filename: str, folder: Path, limits: UploadLimits) -> list[tuple[str, Path]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UploadError(f"{filename}: not a readable zip archive ({exc})") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise UploadError(f"{filename}: {len(members)} files in the archive; at most {limits.max_members}")
        total = 0
        for info in members:
            _check_member(info, filename, limits)
            total += info.file_size
        if total > limits.max_bytes:
            raise UploadError(f"{filename}: unpacks to {total} bytes, over the limit of {limits.max_bytes} (zip bomb?)")
        for info in members:
            if info.is_dir():
                continue
            target = folder / PurePosixPath(info.filename).name
            # Read in bounded chunks: the header sizes checked above can lie.
            written = 0
            with archive.open(info) as src, target.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size or written > limits.max_bytes:
                        raise UploadError(f"{filename}: member {info.filename} unpacks past its declared size")
                    dst.write(chunk)
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".shp", ".geojson", ".json", ".gpkg", ".kml"))
    if not found:
        raise UploadError(f"{filename}: the archive holds no .shp, .gpkg, .geojson or .kml file")
    for shp in (p for p in found if p.suffix.lower() == ".shp"):
        for needed in (".shx", ".dbf"):
            if not shp.with_suffix(needed).exists() and not shp.with_suffix(needed.upper()).exists():
                raise UploadError(f"{filename}: {shp.name} comes without its {needed} file")
    return [(f"{filename}:{p.name}", p) for p in found]


def _check_member(info: zipfile.ZipInfo, filename: str, limits: UploadLimits) -> None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise UploadError(f"{filename}: member {name!r} points outside the archive (path traversal)")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UploadError(f"{filename}: member {name!r} is a symbolic link")
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio and info.file_size > 1 << 20:
        raise UploadError(
            f"{filename}: member {name!r} expands {info.file_size // max(info.compress_size, 1)}x (zip bomb?)"
        )


def _read_source(label: str, path: Path, encoding: str | None) -> tuple[CRS | None, gpd.GeoDataFrame]:
    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:  # GDAL raises several types for unreadable data
        raise UploadError(f"{label}: cannot be read as a GIS file ({exc})") from None
    parts: list[tuple[CRS | None, gpd.GeoDataFrame]] = []
    for layer_name, geom_type in layers:
        if geom_type is None:
            continue  # attribute-only tables in a GeoPackage
        kwargs: dict[str, Any] = {"layer": layer_name}
        if path.suffix.lower() == ".shp" and encoding is None and not _has_cpg(path):
            kwargs["encoding"] = _guess_dbf_encoding(path)
        elif encoding:
            kwargs["encoding"] = encoding
        try:
            info = pyogrio.read_info(path, layer=layer_name)
            frame = pyogrio.read_dataframe(path, **kwargs)
        except Exception as exc:
            raise UploadError(f"{label}: cannot be read ({exc})") from None
        crs = _parse_file_crs(info.get("crs"), label)
        parts.append((crs, frame))
    if not parts:
        raise UploadError(f"{label}: has no geometry column")
    crses = {c.to_wkt() if c else None for c, _ in parts}
    if len(crses) > 1:
        raise UploadError(f"{label}: layers in different CRS ({_crs_names(c for c, _ in parts)}); send one CRS")
    return parts[0][0], pd.concat([f for _, f in parts], ignore_index=True)


def _has_cpg(shp: Path) -> bool:
    return shp.with_suffix(".cpg").exists() or shp.with_suffix(".CPG").exists()


def _guess_dbf_encoding(shp: Path) -> str:
    """Shapefiles without .cpg from Chinese tools are GBK more often than not; UTF-8 wins if it decodes."""
    dbf = shp.with_suffix(".dbf")
    raw = dbf.read_bytes() if dbf.exists() else b""
    try:
        raw.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "GBK"


def _parse_file_crs(text: str | None, label: str) -> CRS | None:
    if not text:
        return None
    try:
        crs = CRS.from_user_input(text)
    except CRSError as exc:
        raise UploadError(f"{label}: CRS {text[:80]!r} is not recognised ({exc})") from None
    if crs.is_engineering or not (crs.is_geographic or crs.is_projected):
        raise UploadError(f"{label}: CRS {crs.name!r} is a local/unknown system; export it in EPSG:4326")
    return crs


def _crs_names(crses: Any) -> str:
    return ", ".join(sorted({c.name if c else "none" for c in crses}))


def _common_crs(frames: list[tuple[CRS | None, gpd.GeoDataFrame]], filename: str) -> CRS | None:
    first = frames[0][0]
    for crs, _ in frames[1:]:
        if (crs is None) != (first is None) or (crs is not None and first is not None and not crs.equals(first)):
            raise UploadError(f"{filename}: mixed CRS ({_crs_names(c for c, _ in frames)}); export all in one CRS")
    return first


def _is_wgs84_like(crs: CRS) -> bool:
    # CGCS2000 (EPSG:4490) and WGS-84 differ by centimetres: both count as "geographic, no shift".
    return bool(crs.is_geographic) and (crs.to_epsg() in (4326, 4490, 4979) or "WGS" in crs.name.upper())


def _to_wgs84(gdf: gpd.GeoDataFrame, filename: str, crs: CRS | None, declared: InputCRS | None) -> gpd.GeoDataFrame:
    if declared is not None:
        if crs is not None and not _is_wgs84_like(crs):
            raise UploadError(f"{filename}: declared {declared.value} but the file says {crs.name}; drop one")
        if declared is InputCRS.wgs84:
            return gdf.set_crs(4326, allow_override=True)
        geoms = [None if g is None else geometry_to_wgs84(g, declared) for g in gdf.geometry]
        return gpd.GeoDataFrame(gdf.drop(columns="geometry"), geometry=geoms, crs=4326)
    if crs is None:
        raise UploadError(
            f"{filename}: no CRS (a Shapefile without .prj?); add the .prj, or declare crs=wgs84|gcj02|bd09"
        )
    if _is_wgs84_like(crs):
        return gdf.set_crs(4326, allow_override=True)
    try:
        return gdf.to_crs(4326)
    except Exception as exc:
        raise UploadError(f"{filename}: cannot convert from {crs.name} to EPSG:4326 ({exc})") from None


def _column(gdf: pd.DataFrame, wanted: str | None, aliases: tuple[str, ...]) -> str | None:
    names = {str(c).lower(): str(c) for c in gdf.columns if c != "geometry"}
    for candidate in ([wanted] if wanted else []) + list(aliases):
        if candidate.lower() in names:
            return names[candidate.lower()]
    return None


def check_lonlat_bounds(geom: BaseGeometry, where: str) -> None:
    """Refuse a geometry whose coordinates are not finite WGS-84 longitudes and latitudes."""
    minx, miny, maxx, maxy = geom.bounds
    finite = all(math.isfinite(v) for v in (minx, miny, maxx, maxy))
    if not finite or minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        box_text = ", ".join(f"{v:.6g}" for v in (minx, miny, maxx, maxy))
        raise UploadError(
            f"{where}: coordinates out of range (bounds {box_text}); longitudes must lie in [-180, 180] and "
            "latitudes in [-90, 90] (EPSG:4326, or declare the file's CRS)"
        )


def _normalise(gdf: gpd.GeoDataFrame, filename: str, code_column: str | None) -> gpd.GeoDataFrame:
    if gdf.geometry.isna().all():
        raise UploadError(f"{filename}: no features with a geometry")
    code_col = _column(gdf, code_column, CODE_ALIASES)
    if code_col is None:
        columns = ", ".join(str(c) for c in gdf.columns if c != "geometry") or "none"
        wanted = code_column or "code"
        raise UploadError(f"{filename}: no code column {wanted!r} among the attributes ({columns})")
    name_col = _column(gdf, None, NAME_ALIASES)
    parent_col = _column(gdf, None, PARENT_ALIASES)
    hh_col = _column(gdf, None, HOUSEHOLD_ALIASES)
    used = {c for c in (code_col, name_col, parent_col, hh_col) if c}
    rows: list[dict[str, Any]] = []
    geoms: list[MultiPolygon] = []
    for i, rec in enumerate(gdf.to_dict("records")):
        geom = rec["geometry"]
        code = _text(rec.get(code_col))
        where = f"{filename}: feature {i + 1}" + (f" (code {code})" if code else "")
        if geom is None or geom.is_empty:
            raise UploadError(f"{where}: has no geometry")
        geom = shapely.force_2d(geom)
        if isinstance(geom, Polygon):
            geom = MultiPolygon([geom])
        if not isinstance(geom, MultiPolygon):
            raise UploadError(f"{where}: geometry is {geom.geom_type}, expected Polygon or MultiPolygon")
        check_lonlat_bounds(geom, where)
        if not code:
            raise UploadError(f"{where}: the code column {code_col!r} is empty")
        households = rec.get(hh_col) if hh_col else None
        rows.append(
            {
                "code": code,
                "name": (_text(rec.get(name_col)) if name_col else None) or code,
                "parent_code": _text(rec.get(parent_col)) if parent_col else None,
                "households": int(households) if households is not None and households == households else None,
                "attrs": {
                    k: _plain(v) for k, v in rec.items() if k not in used and k != "geometry" and _plain(v) is not None
                },
            }
        )
        geoms.append(geom)
    out = gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)
    dupes = sorted(out["code"][out["code"].duplicated()].unique())
    if dupes:
        raise UploadError(f"{filename}: code(s) used by more than one feature: {', '.join(dupes[:10])}")
    return out


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # codes read from numeric DBF fields
    text = str(value).strip()
    return text or None


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_features(gdf: gpd.GeoDataFrame, fmt: str, layer_name: str = "draft") -> bytes:
    """A draft as a GeoPackage or GeoJSON file (EPSG:4326), attributes flattened for QGIS."""
    if fmt not in EXPORT_FORMATS:
        raise UploadError(f"export format {fmt!r} is not supported; use one of {', '.join(EXPORT_FORMATS)}")
    flat = gdf.copy()
    if "attrs" in flat.columns:
        flat["attrs"] = [_json(a) for a in flat["attrs"]]
    if fmt == "geojson":
        return flat.to_json(ensure_ascii=False, drop_id=True).encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="gridmap-export-") as tmp:
        path = Path(tmp) / f"{layer_name}.gpkg"
        pyogrio.write_dataframe(flat, path, layer=layer_name, driver="GPKG")
        return path.read_bytes()


def _json(value: object) -> str:
    import json

    return json.dumps(value if isinstance(value, Mapping) else {}, ensure_ascii=False)
