"""Bulk import on the mini county: formats, encodings, mapping, bad input, idempotency, assignment, SIGKILL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from shapely.geometry import Point
from sqlalchemy.engine import Connection

from gis.bulk import ImportFileError, ImportOptions, ImportRejected, import_file, import_frame
from gis.bulk.readers import detect_encoding
from gis.bulk.values import parse_time_text
from gis.core import db
from gis.spatial.crs import from_wgs84, metres_between
from tests.conftest import scratch_database

ROOT = Path(__file__).resolve().parents[2]
HEADER = "external_id,category,source,reported_at,lon,lat,status,address_text,description\n"
# West grid of the south-west village's southern micro-grid, and a point in the north-east.
SW = (120.905, 30.833)
NE = (120.935, 30.848)


def _count(conn: Connection, table: str = "incidents") -> int:
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _incident_rows() -> list[dict[str, object]]:
    return [
        {
            "external_id": "A1",
            "category": "fire",
            "source": "hotline_110",
            "reported_at": "2024-05-01 08:30:00",
            "lon": SW[0],
            "lat": SW[1],
            "status": "closed",
            "address_text": "魏塘街道中山路1号",
            "description": "冒烟",
        },
        {
            "external_id": "A2",
            "category": "矛盾纠纷",
            "source": "12345热线",
            "reported_at": "2024/05/02 09:00",
            "lon": NE[0],
            "lat": NE[1],
            "status": "上报",
            "address_text": "",
            "description": "邻里纠纷",
        },
        {
            "external_id": "",
            "category": "dispute",
            "source": "grid_patrol",
            "reported_at": "2024-05-03T10:00:00+08:00",
            "lon": 120.9403,
            "lat": 30.845,
            "status": "",
            "address_text": "",
            "description": "边界外",
        },
    ]


def _write_csv(path: Path, rows: list[dict[str, object]], encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return path


def _stored(conn: Connection) -> pd.DataFrame:
    rows = conn.execute(
        sa.text(
            "SELECT external_id, category, source, status, reported_at, received_crs, received_lon, received_lat, "
            "ST_X(geom) AS lon, ST_Y(geom) AS lat, town_code, village_code, grid_code, micro_grid_code, "
            "station_code, beat_code, generation_id, assign_status, snap_distance_m, deadline_at "
            "FROM incidents ORDER BY reported_at"
        )
    ).mappings()
    return pd.DataFrame([dict(r) for r in rows])


def _check_three(conn: Connection, gen: int) -> None:
    got = _stored(conn)
    assert len(got) == 3
    first, second, third = got.to_dict("records")
    assert first["external_id"] == "A1" and first["category"] == "fire" and first["status"] == "closed"
    assert first["reported_at"] == dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)  # 08:30 China time
    assert first["micro_grid_code"] == "33042100100100101" and first["beat_code"] == "330421P0101"
    assert first["station_code"] == "330421P01" and first["town_code"] == "330421001"
    assert first["generation_id"] == gen and first["assign_status"] == "inside"
    assert first["deadline_at"] == first["reported_at"] + dt.timedelta(hours=4)  # fire: 4 h
    assert second["category"] == "dispute" and second["source"] == "hotline_12345" and second["status"] == "reported"
    assert second["grid_code"] == "330421002002002"
    assert third["external_id"].startswith("h:") and third["assign_status"] == "snapped"
    assert 0 < third["snap_distance_m"] < 50


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_each_encoding(connection: Connection, mini_county, tmp_path: Path, encoding: str) -> None:  # type: ignore[no-untyped-def]
    path = _write_csv(tmp_path / "incidents.csv", _incident_rows(), encoding)
    result = import_file(connection, "incidents", path)
    assert result.inserted == 3 and result.bad == 0
    assert result.assign_status == {"inside": 2, "snapped": 1}
    _check_three(connection, mini_county.generation)


def test_encoding_detection() -> None:
    assert detect_encoding("事件".encode()) == "utf-8-sig"
    assert detect_encoding("\ufeff事件".encode()) == "utf-8-sig"
    assert detect_encoding("事件".encode("gbk")) == "gb18030"
    with pytest.raises(ImportFileError, match="neither UTF-8 nor GB18030.*offset 2"):
        detect_encoding(b"ab\xff\xff\xff\xff")


def test_wrong_encoding_is_refused(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    path.write_bytes(HEADER.encode() + b"A1,fire,hotline_110,2024-05-01,120.9,30.84,\x81\x20\xff\n")
    with pytest.raises(ImportFileError, match="neither UTF-8 nor GB18030"):
        import_file(connection, "incidents", path)
    path.write_bytes(HEADER.encode() + "A1,fire,hotline_110,2024-05-01,120.9,30.84,,中山路,\n".encode("gbk"))
    with pytest.raises(ImportFileError, match="undecodable byte"):
        import_file(connection, "incidents", path, ImportOptions(encoding="utf-8"))
    assert _count(connection) == 0


def test_xlsx(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame(_incident_rows())
    frame["reported_at"] = [dt.datetime(2024, 5, 1, 8, 30), "2024/05/02 09:00", "2024-05-03T10:00:00+08:00"]
    frame["external_id"] = ["A1", "A2", None]
    path = tmp_path / "incidents.xlsx"
    frame.to_excel(path, index=False)
    result = import_file(connection, "incidents", path)
    assert result.inserted == 3
    _check_three(connection, mini_county.generation)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_vector_files_reprojected(connection: Connection, mini_county, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame(_incident_rows()).drop(columns=["lon", "lat"])
    points = [Point(r["lon"], r["lat"]) for r in _incident_rows()]
    gdf = gpd.GeoDataFrame(frame, geometry=points, crs="EPSG:4326")
    if fmt == "gpkg":
        gdf = gdf.to_crs(4549)  # the file is in CGCS2000 / GK zone 40: the importer reprojects
    path = tmp_path / f"incidents.{fmt}"
    gdf.to_file(path, driver="GPKG" if fmt == "gpkg" else "GeoJSON")
    result = import_file(connection, "incidents", path)
    assert result.inserted == 3
    if fmt == "gpkg":
        assert any("reprojected" in note for note in result.notes)
    _check_three(connection, mini_county.generation)


def test_vector_file_with_a_polygon_is_refused(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame(_incident_rows()[:2]).drop(columns=["lon", "lat"])
    gdf = gpd.GeoDataFrame(frame, geometry=[Point(SW), Point(NE).buffer(0.001)], crs="EPSG:4326")
    path = tmp_path / "mixed.geojson"
    gdf.to_file(path, driver="GeoJSON")
    with pytest.raises(ImportRejected) as info:
        import_file(connection, "incidents", path)
    problems = info.value.result.problems
    assert problems[["row", "field"]].values.tolist() == [[2, "geometry"]]
    assert "Polygon" in problems["reason"].iloc[0]
    assert _count(connection) == 0


def test_column_mapping_and_gcj02(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    glon, glat = from_wgs84(SW[0], SW[1], "gcj02")
    path = tmp_path / "mapped.csv"
    pd.DataFrame(
        {
            "单号": ["M1"],
            "事件类型": ["火灾隐患"],
            "渠道": ["110报警"],
            "时间": ["2024年05月01日 08:30"],
            "东经": [glon],
            "北纬": [glat],
        }
    ).to_csv(path, index=False, encoding="gbk")
    mapping = {
        "external_id": "单号",
        "category": "事件类型",
        "source": "渠道",
        "reported_at": "时间",
        "lon": "东经",
        "lat": "北纬",
    }
    result = import_file(connection, "incidents", path, ImportOptions(mapping=mapping, crs="gcj02"))
    assert result.inserted == 1
    row = _stored(connection).iloc[0]
    assert row["received_crs"] == "gcj02"
    assert row["received_lon"] == glon and row["received_lat"] == glat
    assert metres_between(row["lon"], row["lat"], SW[0], SW[1]) < 0.5
    assert row["micro_grid_code"] == "33042100100100101"
    assert row["reported_at"] == dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)


def test_mapping_to_a_missing_column_names_it(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write_csv(tmp_path / "a.csv", _incident_rows())
    with pytest.raises(ImportFileError, match="mapped column.*lon=经度.*The file has: external_id"):
        import_file(connection, "incidents", path, ImportOptions(mapping={"lon": "经度"}))


def test_wrong_columns_say_which_are_missing_and_found(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "wrong.csv"
    path.write_text("id,kind,when,x_coord,y_coord\n1,fire,2024-05-01,120.9,30.84\n")
    with pytest.raises(ImportFileError) as info:
        import_file(connection, "incidents", path)
    message = str(info.value)
    assert "missing expected column(s): lon, lat, category, source, reported_at" in message
    assert "The file has: id, kind, when, x_coord, y_coord" in message
    assert _count(connection) == 0


BAD_ROWS = [
    # (row as CSV text after external_id, expected field, expected reason fragment)
    ("fire,hotline_110,2024-05-01 08:00,,30.84,closed", "lon", "missing"),
    ("fire,hotline_110,2024-05-01 08:00,east,30.84,closed", "lon", "not a number: 'east'"),
    ("fire,hotline_110,2024-05-01 08:00,NaN,30.84,closed", "lon", "not a finite number"),
    ("fire,hotline_110,2024-05-01 08:00,120.91,95.5,closed", "lat", "out of range"),
    ("fire,hotline_110,2024-05-01 08:00,30.84,120.91,closed", "lon", "swapped they would lie inside the county"),
    ("fire,hotline_110,2024-05-01 08:00,30.84,100.0,closed", "lon", "look swapped"),
    ("arson,hotline_110,2024-05-01 08:00,120.91,30.84,closed", "category", "unknown category 'arson'"),
    ("fire,pigeon,2024-05-01 08:00,120.91,30.84,closed", "source", "unknown source 'pigeon'"),
    ("fire,hotline_110,2024-05-01 08:00,120.91,30.84,finished", "status", "unknown status 'finished'"),
    ("fire,hotline_110,yesterday,120.91,30.84,closed", "reported_at", "unparseable time 'yesterday'"),
    ("fire,hotline_110,2024-13-45 08:00,120.91,30.84,closed", "reported_at", "unparseable time"),
    ("fire,hotline_110,,120.91,30.84,closed", "reported_at", "missing"),
]


def test_every_bad_input_class_is_reported_and_nothing_stored(
    connection: Connection,
    mini_county,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    lines = ["external_id,category,source,reported_at,lon,lat,status", "G1,fire,hotline_110,2024-05-01,120.91,30.84,"]
    lines += [f"B{i},{row}" for i, (row, _f, _r) in enumerate(BAD_ROWS)]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_file(connection, "incidents", path)
    assert "12 of 13 rows are bad; nothing was stored" in str(info.value)
    problems = info.value.result.problems
    for i, (_row, field, reason) in enumerate(BAD_ROWS):
        found = problems[problems["row"] == i + 3]  # header = row 1, good row = row 2
        assert found["field"].tolist() == [field], (i, found.to_dict("records"))
        assert reason in found["reason"].iloc[0], (i, found["reason"].iloc[0])
    assert _count(connection) == 0
    report = pd.read_csv(tmp_path / "bad.report.csv", encoding="utf-8-sig")
    assert list(report.columns) == ["row", "field", "value", "reason"] and len(report) == 12


def test_skip_bad_loads_good_rows_and_writes_rejects(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = _incident_rows()
    rows[1] = {**rows[1], "lat": "north"}
    path = _write_csv(tmp_path / "some.csv", rows, "gbk")
    result = import_file(connection, "incidents", path, ImportOptions(skip_bad=True))
    assert result.inserted == 2 and result.bad == 1
    assert result.reject_path == tmp_path / "some.rejects.csv"
    rejects = pd.read_csv(result.reject_path, encoding="gb18030", dtype=str)
    assert rejects["external_id"].tolist() == ["A2"]
    assert rejects["_row"].tolist() == ["3"]
    assert rejects["_error"].tolist() == ["lat: not a number: 'north'"]
    assert rejects["category"].tolist() == ["矛盾纠纷"]  # as given, not normalized
    assert _count(connection) == 2


def test_reimport_adds_nothing_for_each_table(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    incidents = _write_csv(tmp_path / "i.csv", _incident_rows())
    buildings = _write_csv(
        tmp_path / "b.csv",
        [
            {"code": "B1", "lon": SW[0], "lat": SW[1], "is_rental": "是", "tenants": 4, "risk_level": "高"},
            {"code": "B2", "lon": NE[0], "lat": NE[1], "is_rental": "no", "tenants": "", "risk_level": ""},
        ],
    )
    addresses = _write_csv(
        tmp_path / "a.csv",
        [
            {
                "full_text": "浙江省嘉兴市嘉善县魏塘街道中山路128号3幢2单元301室",
                "building_code": "B1",
                "lon": SW[0],
                "lat": SW[1],
            },
            {
                "full_text": "魏塘街道 中山路 一百二十八号 3栋 2单元 301室",
                "building_code": "B1",
                "lon": SW[0],
                "lat": SW[1],
            },
            {"full_text": "姚庄镇丁栅村3组15号", "building_code": "", "lon": NE[0], "lat": NE[1]},
        ],
    )
    hazards = _write_csv(
        tmp_path / "h.csv",
        [
            {
                "category": "飞线充电",
                "severity": "high",
                "status": "open",
                "found_at": "2024-05-01 10:00",
                "lon": SW[0],
                "lat": SW[1],
                "building_code": "B1",
                "description": "楼道飞线",
            },
            {
                "category": "gas",
                "severity": "中",
                "status": "rectified",
                "found_at": "2024-05-02",
                "lon": NE[0],
                "lat": NE[1],
                "building_code": "",
                "description": "",
            },
        ],
    )
    expected = {"incidents": 3, "buildings": 2, "addresses": 2, "hazards": 2}
    for kind, path in (
        ("incidents", incidents),
        ("buildings", buildings),
        ("addresses", addresses),
        ("hazards", hazards),
    ):
        first = import_file(connection, kind, path)
        assert first.inserted == expected[kind], kind
        for strategy in ("merge", "rebuild"):
            again = import_file(connection, kind, path, ImportOptions(strategy=strategy))  # type: ignore[arg-type]
            assert again.inserted == 0, (kind, strategy)
        assert _count(connection, kind) == expected[kind]
    assert first.duplicates_in_file == 0
    addr = connection.execute(
        sa.text(
            "SELECT normalized, precision, road, house_no, room_no, building_id IS NOT NULL AS linked, grid_code "
            "FROM addresses ORDER BY id"
        )
    ).all()
    assert addr[0].normalized == "魏塘街道中山路128号3幢2单元301室" and addr[0].precision == "room" and addr[0].linked
    assert addr[1].road is None and not addr[1].linked and addr[1].grid_code == "330421002002002"
    b1 = connection.execute(
        sa.text("SELECT is_rental, tenants, risk_level, micro_grid_code FROM buildings WHERE code = 'B1'")
    ).one()
    assert tuple(b1) == (True, 4, "high", "33042100100100101")


def test_unknown_building_code_is_a_bad_row(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write_csv(
        tmp_path / "a.csv", [{"full_text": "中山路1号", "building_code": "NOPE", "lon": SW[0], "lat": SW[1]}]
    )
    with pytest.raises(ImportRejected) as info:
        import_file(connection, "addresses", path)
    assert info.value.result.problems["reason"].tolist() == ["no building with code 'NOPE' is stored"]


def _points(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Random points in and around the mini county, plus points exactly on edges and vertices."""
    rng = np.random.default_rng(seed)
    lon = list(rng.uniform(120.8995, 120.9405, 300))
    lat = list(rng.uniform(30.8295, 30.8505, 300))
    # Shared edges and vertices of towns, villages, grids, micro-grids and beats.
    for x in (120.90, 120.91, 120.913, 120.92, 120.927, 120.93, 120.94):
        for y in (30.83, 30.835, 30.84, 30.845, 30.85, 30.8377):
            lon.append(x)
            lat.append(y)
    # Snapped west/east, outside, south of the county. (Not at equal distance from two polygons:
    # such exact ties are decided by float rounding, differently in PostGIS and in process.)
    lon += [120.8996, 120.9404, 120.95, 120.92]
    lat += [30.8402, 30.8401, 30.84, 30.8296]
    return np.array(lon), np.array(lat)


def test_bulk_assignment_equals_the_trigger(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _points()
    n = len(lon)
    when = "2024-06-01 12:00:00+08"
    connection.execute(
        sa.text(
            "INSERT INTO incidents (category, source, external_id, reported_at, status, geom) "
            "SELECT 'dispute', 'other', 'sql-' || i, CAST(:t AS timestamptz), 'closed', "
            "ST_SetSRID(ST_MakePoint(x, y), 4326) FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) "
            "WITH ORDINALITY AS p(x, y, i)"
        ),
        {"x": lon.tolist(), "y": lat.tolist(), "t": when},
    )
    frame = pd.DataFrame(
        {
            "external_id": [f"bulk-{i + 1}" for i in range(n)],
            "category": "dispute",
            "source": "other",
            "reported_at": when,
            "lon": lon,
            "lat": lat,
            "status": "closed",
        }
    )
    result = import_frame(connection, "incidents", frame)
    assert result.inserted == n
    cols = "town_code, village_code, grid_code, micro_grid_code, station_code, beat_code, generation_id, assign_status"
    pairs = connection.execute(
        sa.text(
            f"SELECT a.external_id, ({cols.replace(', ', ', a.').replace('town_code', 'a.town_code', 1)}) "
            f"IS NOT DISTINCT FROM ({cols.replace(', ', ', b.').replace('town_code', 'b.town_code', 1)}) AS same, "
            "abs(coalesce(a.snap_distance_m, 0) - coalesce(b.snap_distance_m, 0)) AS snap_diff "
            "FROM incidents a JOIN incidents b ON b.external_id = 'bulk-' || substr(a.external_id, 5) "
            "WHERE a.external_id LIKE 'sql-%'"
        )
    ).all()
    assert len(pairs) == n
    assert all(p.same for p in pairs), [p.external_id for p in pairs if not p.same][:10]
    assert max(p.snap_diff for p in pairs) < 0.05
    statuses = dict(
        connection.execute(
            sa.text("SELECT assign_status, count(*) FROM incidents WHERE external_id LIKE 'bulk-%' GROUP BY 1")
        ).all()
    )
    assert statuses["inside"] > 250 and statuses["snapped"] >= 2 and statuses["outside_jurisdiction"] >= 1


def test_rebuild_restores_every_index(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    query = sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'incidents' ORDER BY 1")
    before = connection.execute(query).all()
    path = _write_csv(tmp_path / "i.csv", _incident_rows())
    result = import_file(connection, "incidents", path, ImportOptions(strategy="rebuild"))
    assert result.strategy == "rebuild" and result.inserted == 3
    assert connection.execute(query).all() == before
    result = import_file(
        connection,
        "incidents",
        _write_csv(tmp_path / "j.csv", [{**_incident_rows()[0], "external_id": "A9"}]),
        ImportOptions(strategy="merge"),
    )
    assert result.strategy == "merge" and result.inserted == 1


def test_time_parsing_rules() -> None:
    got = parse_time_text(["2024-05-01 08:30", "2024-05-01T00:30:00Z", "2024年5月1日 08:30", "2024/5/1 8:30", "x"])
    expected = pd.Timestamp("2024-05-01T00:30:00Z")
    assert got.iloc[:4].tolist() == [expected] * 4
    assert pd.isna(got.iloc[4])


# --- SIGKILL mid-import: needs a real database of its own (a subprocess can't see the test transaction) ---


@pytest.fixture
def scratch_url(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "bulkkill") as scratch:
        yield scratch


def _big_csv(path: Path, n: int) -> Path:
    rng = np.random.default_rng(3)
    pd.DataFrame(
        {
            "external_id": [f"K{i:07d}" for i in range(n)],
            "category": "dispute",
            "source": "grid_patrol",
            "reported_at": "2024-05-01 08:00:00",
            "lon": rng.uniform(120.90, 120.94, n).round(6),
            "lat": rng.uniform(30.83, 30.85, n).round(6),
            "status": "closed",
        }
    ).to_csv(path, index=False)
    return path


def test_sigkill_mid_copy_leaves_nothing_and_a_rerun_completes(scratch_url: str, tmp_path: Path) -> None:
    from boundaries.generations import publish_layers
    from boundaries.sample import build_mini_county

    engine = db.make_engine(scratch_url)
    with engine.begin() as conn:
        publish_layers(
            conn, build_mini_county(), note="mini", author="tests", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
    index_query = sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'incidents' ORDER BY 1")
    with engine.connect() as conn:
        indexes = conn.execute(index_query).scalars().all()
    n = 400_000
    path = _big_csv(tmp_path / "big.csv", n)
    env = {**os.environ, "GRIDMAP_DATABASE_URL": scratch_url}
    cmd = [sys.executable, "-c", "from api.cli import main; main()", "import", "incidents", str(path)]
    log = (tmp_path / "killed.log").open("wb")  # a file, not a pipe nobody reads (it would fill and block)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    killed_during_copy = False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                copying = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid "
                        "WHERE d.datname = current_database() AND p.tuples_processed > 0"
                    )
                ).scalar()
            if copying:
                proc.send_signal(signal.SIGKILL)
                killed_during_copy = True
                break
            time.sleep(0.05)
    finally:
        proc.wait(timeout=60)
    log.close()
    assert killed_during_copy, (tmp_path / "killed.log").read_text()
    assert proc.returncode == -signal.SIGKILL
    # The server notices the dead client and rolls back; wait for its backend to go away.
    with engine.connect() as conn:
        for _ in range(100):
            busy = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalar()
            if not busy:
                break
            time.sleep(0.1)
        assert conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar() == 0
        assert conn.execute(index_query).scalars().all() == indexes  # the dropped indexes are back
    assert _run_cli(cmd, env, tmp_path / "rerun.log") == 0, (tmp_path / "rerun.log").read_text()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar() == n
        assert conn.execute(sa.text("SELECT count(*) FROM incidents WHERE grid_code IS NULL")).scalar() == 0
    assert _run_cli(cmd, env, tmp_path / "again.log") == 0
    assert "0 stored" in (tmp_path / "again.log").read_text()
    engine.dispose()


def _run_cli(cmd: list[str], env: dict[str, str], log_path: Path) -> int:
    # Output to a file, so that a failure shows the command's own message.
    with log_path.open("wb") as log:
        return subprocess.run(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, timeout=300
        ).returncode
