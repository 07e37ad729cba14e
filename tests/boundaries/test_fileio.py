"""Reading uploads of each format, and refusing bad ones with a message naming the problem."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import LineString, box

from boundaries.fileio import UploadError, UploadLimits, read_upload, write_features
from gis.spatial.crs import wgs84_to_gcj02

CELLS = [box(120.90, 30.83, 120.91, 30.84), box(120.91, 30.83, 120.92, 30.84)]


def _frame(crs: str | int | None = 4326, **extra: list[object]) -> gpd.GeoDataFrame:
    data = {
        "code": ["330421001001001", "330421001001002"],
        "name": ["西塘网格", "东区网格"],
        "parent_code": ["330421001001"] * 2,
        **extra,
    }
    return gpd.GeoDataFrame(data, geometry=CELLS, crs=crs)


def _shapefile_zip(
    tmp_path: Path,
    gdf: gpd.GeoDataFrame,
    *,
    name: str = "grids",
    encoding: str = "UTF-8",
    keep: tuple[str, ...] = (".shp", ".shx", ".dbf", ".prj", ".cpg"),
) -> bytes:
    folder = tmp_path / name
    folder.mkdir()
    pyogrio.write_dataframe(gdf, folder / f"{name}.shp", encoding=encoding)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in keep:
                z.write(path, path.name)
    return buf.getvalue()


def test_geojson_gpkg_and_kml(tmp_path: Path) -> None:
    gdf = _frame()
    for driver, suffix in (("GeoJSON", ".geojson"), ("GPKG", ".gpkg"), ("KML", ".kml")):
        path = tmp_path / f"grids{suffix}"
        # KML stores attributes as Name/Description plus extended data.
        out = gdf.rename(columns={"name": "Name"}) if driver == "KML" else gdf
        pyogrio.write_dataframe(out, path, driver=driver)
        got = read_upload(path.read_bytes(), path.name)
        assert list(got["code"]) == list(gdf["code"]), driver
        assert list(got["name"]) == ["西塘网格", "东区网格"], driver
        assert got.crs.to_epsg() == 4326
        assert got.geometry.iloc[0].symmetric_difference(CELLS[0]).area < 1e-12, driver


def test_zipped_shapefile_in_gbk_with_cpg(tmp_path: Path) -> None:
    data = _shapefile_zip(tmp_path, _frame(households=[320, 410]), encoding="GBK")
    got = read_upload(data, "grids.zip")
    assert list(got["name"]) == ["西塘网格", "东区网格"]
    assert list(got["households"]) == [320, 410]
    assert list(got["parent_code"]) == ["330421001001"] * 2  # from the 10-character field "parent_cod"


def test_shapefile_without_cpg_is_guessed_as_gbk(tmp_path: Path) -> None:
    data = _shapefile_zip(tmp_path, _frame(), encoding="GBK", keep=(".shp", ".shx", ".dbf", ".prj"))
    assert list(read_upload(data, "grids.zip")["name"]) == ["西塘网格", "东区网格"]


def test_projected_crs_is_converted(tmp_path: Path) -> None:
    data = _shapefile_zip(tmp_path, _frame().to_crs(4549))
    got = read_upload(data, "grids.zip")
    assert got.geometry.iloc[0].bounds == pytest.approx(CELLS[0].bounds, abs=1e-7)


def test_missing_crs_is_an_error_unless_declared_and_gcj02_is_converted(tmp_path: Path) -> None:
    shifted = _frame().copy()
    shifted["geometry"] = [
        box(
            *[
                c
                for xy in zip(*wgs84_to_gcj02([g.bounds[0], g.bounds[2]], [g.bounds[1], g.bounds[3]]), strict=True)
                for c in xy
            ]
        )
        for g in CELLS
    ]
    data = _shapefile_zip(tmp_path, shifted, keep=(".shp", ".shx", ".dbf", ".cpg"))
    with pytest.raises(UploadError, match=r"grids.zip: no CRS .*\.prj"):
        read_upload(data, "grids.zip")
    got = read_upload(data, "grids.zip", declared_crs="gcj02")
    # Back within ~1 m (the shift varies along the box's edges, the corners were shifted exactly).
    assert got.geometry.iloc[0].bounds == pytest.approx(CELLS[0].bounds, abs=1e-5)
    assert read_upload(data, "grids.zip", declared_crs="wgs84").geometry.iloc[0].bounds[0] > 120.904


def test_mixed_crs_in_one_archive(tmp_path: Path) -> None:
    a = _shapefile_zip(tmp_path, _frame(), name="a")
    b = _shapefile_zip(tmp_path, _frame().to_crs(4549), name="b")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for part in (a, b):
            with zipfile.ZipFile(io.BytesIO(part)) as src:
                for info in src.infolist():
                    z.writestr(info.filename, src.read(info))
    with pytest.raises(UploadError, match="mixed CRS"):
        read_upload(buf.getvalue(), "both.zip")


def test_bad_contents(tmp_path: Path) -> None:
    lines = gpd.GeoDataFrame({"code": ["1"]}, geometry=[LineString([(120.9, 30.8), (121, 30.9)])], crs=4326)
    with pytest.raises(UploadError, match=r"feature 1 \(code 1\): geometry is LineString"):
        read_upload(lines.to_json().encode(), "roads.geojson")
    no_code = _frame().drop(columns="code")
    with pytest.raises(UploadError, match=r"no code column 'code' among the attributes \(id, name, parent_code\)"):
        read_upload(no_code.to_json().encode(), "grids.geojson")
    assert list(read_upload(no_code.to_json().encode(), "x.geojson", code_column="name")["code"]) == [
        "西塘网格",
        "东区网格",
    ]
    empty = (
        b'{"type": "FeatureCollection", "features": '
        b'[{"type": "Feature", "properties": {"code": "1"}, "geometry": null}]}'
    )
    with pytest.raises(UploadError, match="no features with a geometry"):
        read_upload(empty, "nothing.geojson")
    with pytest.raises(UploadError, match="unsupported file type"):
        read_upload(b"x", "grids.xlsx")
    with pytest.raises(UploadError, match="over the upload limit"):
        read_upload(b"x" * 2000, "big.geojson", limits=UploadLimits(max_bytes=1000))


def test_zip_bomb_and_path_traversal_are_refused() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("grids.shp", b"\0" * (50 * 1024 * 1024))
    assert len(bomb.getvalue()) < 200_000
    with pytest.raises(UploadError, match="zip bomb"):
        read_upload(bomb.getvalue(), "bomb.zip")
    with pytest.raises(UploadError, match="zip bomb"):
        read_upload(bomb.getvalue(), "bomb.zip", limits=UploadLimits(max_bytes=10 * 1024 * 1024, max_ratio=10**6))
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../etc/grids.geojson", _frame().to_json())
    with pytest.raises(UploadError, match="path traversal"):
        read_upload(evil.getvalue(), "evil.zip")


def test_export_round_trips(tmp_path: Path) -> None:
    gdf = _frame().assign(households=[1, 2], attrs=[{"k": "值"}, {}])
    for fmt, suffix in (("gpkg", ".gpkg"), ("geojson", ".geojson")):
        data = write_features(gdf, fmt)
        got = read_upload(data, f"draft{suffix}")
        assert list(got["code"]) == list(gdf["code"])
        assert list(got["households"]) == [1, 2]
