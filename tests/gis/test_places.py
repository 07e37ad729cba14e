"""Places (points of interest): importing a list (CSV in UTF-8 or GBK, XLSX; every bad row named,
nothing half-written) and finding a place's building, position and grid from its name."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.bulk.readers import read_table
from gis.spatial.crs import from_wgs84
from gis.spatial.geocode import geocode
from gis.spatial.placeimport import PlaceImportError, import_places
from tests.gis.test_address_variants import THRESHOLD, grid_at, typed_county  # noqa: F401 - the fixture

HEADER = ["名称", "别名", "类型", "地址", "经度", "纬度", "坐标系"]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def market_position() -> tuple[str, str]:
    lon, lat = from_wgs84(120.936, 30.836, "gcj02")
    return f"{lon:.7f}", f"{lat:.7f}"


def good_rows() -> list[list[str]]:
    lon, lat = market_position()
    return [
        ["金色家园", "金色小区；金色花园", "小区", "魏塘街道中山路128号", "", "", ""],
        ["西塘农贸市场", "", "market", "", lon, lat, "gcj02"],
        ["丁栅村文化礼堂", "", "其他", "嘉善县西塘镇丁栅村3组2号", "", "", ""],
    ]


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_import_utf8_then_again_updates(connection: Connection, typed_county: dict[str, int], tmp_path: Path) -> None:  # noqa: F811
    path = write_csv(tmp_path / "places.csv", good_rows())
    result = import_places(connection, read_table(path))
    assert (result.rows, result.inserted, result.updated) == (3, 3, 0)
    assert count(connection, "place_names") == 5
    again = import_places(connection, read_table(path))
    assert (again.inserted, again.updated) == (0, 3)
    assert count(connection, "places") == 3 and count(connection, "place_names") == 5
    compound = connection.execute(
        sa.text("SELECT kind, address_normalized, address_id FROM places WHERE name = '金色家园'")
    ).one()
    assert compound.kind == "compound" and compound.address_normalized == "魏塘街道中山路128号"
    assert compound.address_id is not None


def test_import_gbk_csv_and_xlsx(connection: Connection, typed_county: dict[str, int], tmp_path: Path) -> None:  # noqa: F811
    gbk = write_csv(tmp_path / "places_gbk.csv", good_rows()[:2], encoding="gbk")
    assert import_places(connection, read_table(gbk)).inserted == 2
    xlsx = tmp_path / "places.xlsx"
    pd.DataFrame([good_rows()[2]], columns=HEADER).to_excel(xlsx, index=False)
    assert import_places(connection, read_table(xlsx)).inserted == 1
    assert count(connection, "places") == 3


def test_bad_rows_are_all_named_and_nothing_is_written(
    connection: Connection,
    typed_county: dict[str, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    rows = good_rows() + [
        ["", "", "小区", "魏塘街道中山路131号", "", "", ""],  # row 5: no name
        ["某某超市", "", "supermarket", "魏塘街道中山路131号", "", "", ""],  # row 6: unknown kind
        ["某某学校", "", "学校", "上海市黄浦区南京东路1号", "", "", ""],  # row 7: no such address
        ["某某医院", "", "医院", "", "121.5", "31.2", ""],  # row 8: outside the county
        ["某某公园", "", "公园", "", "东经120度", "30.84", ""],  # row 9: not a number
        ["某某车站", "", "车站", "", "120.91", "30.84", "utm"],  # row 10: unknown crs
        ["某某企业", "", "企业", "", "", "", ""],  # row 11: neither address nor coordinate
        ["金色家园", "", "小区", "魏塘街道中山路128号", "", "", ""],  # row 12: repeats row 2
        ["某某机关", "", "机关", "魏塘街道中山路", "", "", ""],  # row 13: only a road
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(PlaceImportError) as info:
        import_places(connection, read_table(path))
    named = {(p.row, p.field) for p in info.value.problems}
    assert named == {
        (5, "name"),
        (6, "kind"),
        (7, "address"),
        (8, "lon"),
        (9, "lon"),
        (10, "crs"),
        (11, "address"),
        (12, "name"),
        (13, "address"),
    }
    by_row = {p.row: p for p in info.value.problems}
    assert by_row[6].value == "supermarket" and "unknown kind" in by_row[6].reason
    assert "outside the county" in by_row[8].reason
    assert "repeats row 2" in by_row[12].reason
    assert by_row[7].value == "上海市黄浦区南京东路1号"
    assert "row 6, kind 'supermarket'" in str(info.value)
    assert count(connection, "places") == 0 and count(connection, "place_names") == 0


def test_file_without_the_needed_columns_is_refused(connection: Connection, tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("标题,备注\n金色家园,小区\n", encoding="utf-8")
    with pytest.raises(PlaceImportError, match="needs a name column"):
        import_places(connection, read_table(path))


@pytest.fixture
def places(connection: Connection, typed_county: dict[str, int], tmp_path: Path) -> dict[str, int]:  # noqa: F811
    import_places(connection, read_table(write_csv(tmp_path / "places.csv", good_rows())))
    return typed_county


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("金色家园2栋2单元302", "r2-2-302"),
        ("魏塘街道 金色小区 二座 二单元 三〇二室", "r2-2-302"),
        ("嘉善县金色花园3幢", "b3"),
        ("丁栅村文化礼堂", "g3-2"),
    ],
)
def test_place_name_finds_its_building(connection: Connection, places: dict[str, int], text: str, key: str) -> None:
    result = geocode(connection, text, threshold=THRESHOLD)
    assert result.method == "place"
    assert result.match is not None and result.match.address_id == places[key]
    assert result.match.place is not None
    assert THRESHOLD <= result.match.score < 1.0


def test_place_known_by_position_answers_its_position_and_grid(connection: Connection, places: dict[str, int]) -> None:
    result = geocode(connection, "西塘农贸市场门口", threshold=THRESHOLD)
    assert result.match is not None
    assert result.match.precision == "place" and result.match.address_id is None
    assert result.match.lon == pytest.approx(120.936, abs=1e-5) and result.match.lat == pytest.approx(30.836, abs=1e-5)
    assert grid_at(connection, result.match.lon, result.match.lat) == grid_at(connection, 120.936, 30.836)


def test_a_name_shared_by_two_places_is_only_a_candidate(
    connection: Connection,
    places: dict[str, int],
    tmp_path: Path,
) -> None:
    lon, lat = from_wgs84(120.905, 30.846, "gcj02")
    extra = write_csv(tmp_path / "more.csv", [["农贸市场", "", "market", "魏塘街道中山路131号", "", "", ""]])
    import_places(connection, read_table(extra))
    extra2 = write_csv(tmp_path / "more2.csv", [["农贸市场", "", "market", "", f"{lon}", f"{lat}", "gcj02"]])
    # Same name, same town, another position: a second place (its context differs).
    import_places(connection, read_table(extra2))
    shared = geocode(connection, "农贸市场", threshold=THRESHOLD)
    assert shared.match is None
    assert len(shared.candidates) == 2 and all(c.score < THRESHOLD for c in shared.candidates)
    # 西塘农贸市场 is longer and hides 农贸市场: its own place.
    west = geocode(connection, "西塘农贸市场", threshold=THRESHOLD)
    assert west.match is not None and west.match.place == "西塘农贸市场"


def test_a_place_named_like_a_road_does_not_take_the_roads_addresses(
    connection: Connection,
    places: dict[str, int],
    tmp_path: Path,
) -> None:
    lon, lat = from_wgs84(120.936, 30.846, "gcj02")
    path = write_csv(tmp_path / "short.csv", [["中山", "", "other", "", f"{lon}", f"{lat}", "gcj02"]])
    import_places(connection, read_table(path))
    result = geocode(connection, "中山路128号3栋", threshold=THRESHOLD)
    assert result.match is not None and result.match.address_id == places["b3"]
    assert result.match.place is None
