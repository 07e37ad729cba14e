from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.engine import Connection

from boundaries.generations import publish_layers
from gis.core.privacy import mask_id_card, mask_name, mask_phone
from gis.outputs.export import export_layer
from gis.outputs.exportcrs import parse_export_crs
from gis.outputs.exportfiles import shapefile_field_names
from gis.outputs.exportquery import ExportError, load_layer_frame
from gis.spatial.crs import from_wgs84

UTC = dt.UTC


def add_points(conn: Connection) -> None:
    """Three incidents in 2024 and one in 2025, and a rental building with a landlord, all committed to the test."""
    rows = [
        ("垃圾堆放", dt.datetime(2024, 3, 1, 8, tzinfo=UTC), 120.905, 30.835, "张三丰", "13812345678"),
        ("占道经营", dt.datetime(2024, 6, 1, 9, tzinfo=UTC), 120.915, 30.845, "李四", "13987654321"),
        ("违章搭建", dt.datetime(2024, 9, 1, 10, tzinfo=UTC), 120.925, 30.835, None, None),
        ("噪音扰民", dt.datetime(2025, 1, 2, 11, tzinfo=UTC), 120.935, 30.845, "王五", "13700001111"),
    ]
    for category, at, lon, lat, name, phone in rows:
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, reporter_name, reporter_phone, "
                "description, geom) VALUES (:c, 'app', :at, :n, :p, :d, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            {"c": category, "at": at, "n": name, "p": phone, "d": f"{category}，请处理", "lon": lon, "lat": lat},
        )
    conn.execute(
        sa.text(
            "INSERT INTO buildings (code, name, is_rental, landlord_name, landlord_phone, landlord_id_card, "
            "last_inspected_at, geom) VALUES ('B1', '幸福里1幢', true, '赵六', '13600002222', '330421199001011234', "
            "'2024-05-05T10:00:00+08:00', ST_SetSRID(ST_MakePoint(120.906, 30.836), 4326))"
        )
    )


@pytest.mark.parametrize(
    "value", ["13812345678", "+8613812345678", "12345", "", "330421199001011234", "33042119", "张三丰", "欧阳", "A"]
)
def test_sql_masking_matches_python(connection: Connection, value: str) -> None:
    row = connection.execute(
        sa.text("SELECT gridmap_mask_phone(:v), gridmap_mask_id_card(:v), gridmap_mask_name(:v)"), {"v": value}
    ).one()
    assert tuple(row) == (mask_phone(value), mask_id_card(value), mask_name(value))


def test_public_views_mask_and_follow_generation(connection: Connection, mini_county: Any) -> None:
    add_points(connection)
    building = connection.execute(
        sa.text("SELECT landlord_name, landlord_phone, landlord_id_card, grid_code FROM ogc.buildings")
    ).one()
    assert tuple(building) == ("赵*", "136****2222", "330421********1234", "330421001001001")
    reporters = connection.execute(sa.text("SELECT reporter_phone FROM ogc.incidents ORDER BY id")).scalars().all()
    assert reporters == ["138****5678", "139****4321", None, "137****1111"]
    counts = {
        view: connection.execute(sa.text(f"SELECT count(*) FROM ogc.{view}")).scalar()
        for view in ("towns", "villages", "grids", "micro_grids", "stations", "beats")
    }
    assert counts == {"towns": 2, "villages": 4, "grids": 8, "micro_grids": 16, "stations": 2, "beats": 3}
    publish_merged_grids(connection, mini_county.villages)
    assert connection.execute(sa.text("SELECT count(*) FROM ogc.grids")).scalar() == 4


def publish_merged_grids(conn: Connection, villages: gpd.GeoDataFrame) -> None:
    """A second generation (2023) in which each village is one grid."""
    villages = villages.assign(code=lambda f: f["code"] + "001", parent_code=lambda f: f["code"])
    publish_layers(
        conn, {"grid": villages}, note="merge", author="tests", published_at=dt.datetime(2023, 1, 1, tzinfo=UTC)
    )


def test_as_of_exports_the_generation_then_in_force(connection: Connection, mini_county: Any, tmp_path: Path) -> None:
    publish_merged_grids(connection, mini_county.villages)
    now = export_layer(connection, "grids", "geojson", tmp_path / "now.geojson")
    before = export_layer(
        connection, "grids", "geojson", tmp_path / "2021.geojson", as_of=dt.datetime(2021, 6, 1, tzinfo=UTC)
    )
    assert (now.count, before.count) == (4, 8)
    assert len(pyogrio.read_dataframe(tmp_path / "2021.geojson")) == 8


def test_shapefile_names_are_short_unique_and_stable() -> None:
    columns = ["id", "households", "reporter_name", "reporter_phone", "landlord_id_card", "landlord_id_cardx"]
    mapping = shapefile_field_names(columns)
    assert mapping["households"] == "households"  # exactly 10 characters stays
    assert mapping["reporter_name"] == "reporter_n"
    assert mapping["landlord_id_card"] == "landlord_i"
    assert mapping["landlord_id_cardx"] == "landlor_01"  # the clash gets the numbered form
    assert all(len(v) <= 10 for v in mapping.values())
    assert len({v.lower() for v in mapping.values()}) == len(columns)


def test_frame_masks_below_dispatcher_only(connection: Connection, mini_county: Any) -> None:
    add_points(connection)
    viewer = load_layer_frame(connection, "buildings", role="viewer")
    dispatcher = load_layer_frame(connection, "buildings", role="dispatcher")
    assert viewer.loc[0, "landlord_id_card"] == "330421********1234"
    assert viewer.loc[0, "landlord_name"] == "赵*"
    assert dispatcher.loc[0, "landlord_id_card"] == "330421199001011234"
    assert dispatcher.loc[0, "landlord_phone"] == "13600002222"


def test_geopackage_in_gcj02_and_cgcs2000(connection: Connection, mini_county: Any, tmp_path: Path) -> None:
    add_points(connection)
    gcj = export_layer(connection, "incidents", "gpkg", tmp_path / "i.gpkg", crs="gcj02")
    assert gcj.count == 4
    frame = pyogrio.read_dataframe(tmp_path / "i.gpkg", layer="incidents")
    assert frame.crs.name == "GCJ-02"
    first = frame.sort_values("id").iloc[0]
    lon, lat = from_wgs84(120.905, 30.835, "gcj02")
    assert first.geometry.x == pytest.approx(lon, abs=1e-9) and first.geometry.y == pytest.approx(lat, abs=1e-9)
    assert first["reporter_name"] == "张**" and first["category"] == "垃圾堆放"

    export_layer(connection, "grids", "gpkg", tmp_path / "g.gpkg", crs="cgcs2000")
    grids = pyogrio.read_dataframe(tmp_path / "g.gpkg")
    assert grids.crs.to_epsg() == 4490 and len(grids) == 8
    assert grids.total_bounds == pytest.approx([120.90, 30.83, 120.94, 30.85])


def test_geojson_time_window_and_unmasked_for_dispatcher(
    connection: Connection, mini_county: Any, tmp_path: Path
) -> None:
    add_points(connection)
    out = tmp_path / "i.geojson"
    result = export_layer(
        connection, "incidents", "geojson", out, role="dispatcher",
        start=dt.datetime(2024, 1, 1, tzinfo=UTC), end=dt.datetime(2025, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    assert result.count == 3 and not result.masked
    frame = pyogrio.read_dataframe(out)
    assert sorted(frame["category"]) == sorted(["垃圾堆放", "占道经营", "违章搭建"])
    assert "13812345678" in set(frame["reporter_phone"])
    assert frame.crs.to_epsg() == 4326


def test_zipped_shapefile_has_prj_cpg_and_field_map(connection: Connection, mini_county: Any, tmp_path: Path) -> None:
    add_points(connection)
    out = tmp_path / "incidents.zip"
    export_layer(connection, "incidents", "shp", out)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert {"incidents.shp", "incidents.shx", "incidents.dbf", "incidents.prj", "incidents.cpg"} <= names
        assert zf.read("incidents.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
        fields = pd.read_csv(zf.open("fields.csv"))
        assert "10 characters" in zf.read("README.txt").decode()
    mapping = dict(zip(fields["column"], fields["field"], strict=True))
    assert mapping["reporter_phone"] == "reporter_p"
    frame = pyogrio.read_dataframe(f"/vsizip/{out}/incidents.shp")
    assert len(frame) == 4 and frame.crs.to_epsg() == 4326
    first = frame.sort_values("id").iloc[0]
    assert first["reporter_p"] == "138****5678"
    assert first["descriptio"] == "垃圾堆放，请处理"
    assert first["reported_a"].startswith("2024-03-01T08:00:00")


def test_csv_and_xlsx_for_spreadsheets(connection: Connection, mini_county: Any, tmp_path: Path) -> None:
    add_points(connection)
    export_layer(connection, "grids", "csv", tmp_path / "g.csv")
    raw = (tmp_path / "g.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    table = pd.read_csv(tmp_path / "g.csv", encoding="utf-8-sig", dtype={"code": str})
    assert len(table) == 8 and table.loc[0, "name"] == "330421001001第1网格"
    assert table.loc[0, "WKT"].startswith("MULTIPOLYGON")

    export_layer(connection, "incidents", "xlsx", tmp_path / "i.xlsx")
    book = load_workbook(tmp_path / "i.xlsx")
    sheet = book["incidents"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert len(rows) == 5
    first = dict(zip(header, rows[1], strict=True))
    assert first["reporter_name"] == "张**"
    # 08:00 UTC is 16:00 in China; Excel gets the local wall time.
    assert first["reported_at"] == dt.datetime(2024, 3, 1, 16, 0)
    about = dict(book["about"].iter_rows(values_only=True))
    assert about["crs"] == "WGS 84" and about["personal data"] == "masked"


def test_bad_requests_name_the_problem(connection: Connection, mini_county: Any, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown layer 'roads'"):
        export_layer(connection, "roads", "gpkg", tmp_path / "x.gpkg")
    with pytest.raises(ExportError, match="unknown export format 'kml'"):
        export_layer(connection, "grids", "kml", tmp_path / "x.kml")
    with pytest.raises(ExportError, match="unknown export crs 'bd09'"):
        parse_export_crs("bd09")
    with pytest.raises(ExportError, match="boundary layer"):
        export_layer(connection, "grids", "gpkg", tmp_path / "x.gpkg", start=dt.datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ExportError, match="as_of applies to boundary layers"):
        export_layer(connection, "incidents", "gpkg", tmp_path / "x.gpkg", as_of=dt.datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ExportError, match="start must be before end"):
        export_layer(
            connection, "incidents", "csv", tmp_path / "x.csv",
            start=dt.datetime(2024, 2, 1, tzinfo=UTC), end=dt.datetime(2024, 1, 1, tzinfo=UTC),
        )  # fmt: skip
    with pytest.raises(ExportError, match="does not exist"):
        export_layer(connection, "grids", "gpkg", tmp_path / "nowhere" / "x.gpkg")
    assert parse_export_crs("EPSG:4490").value == "cgcs2000"
