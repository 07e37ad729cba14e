"""GDAL as a real client: the OGC API (OAPIF driver), exported files, and ogr2ogr, against a real
uvicorn server on a throwaway database."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from boundaries.generations import publish_layers
from gis.core import db
from gis.people.keys import create_key
from tests.conftest import api_server, build_mini_county, scratch_database

pytestmark = pytest.mark.skipif(
    shutil.which("ogrinfo") is None or shutil.which("ogr2ogr") is None,
    reason="GDAL command-line tools are not installed (Debian/Ubuntu: apt-get install gdal-bin)",
)

INCIDENTS = 30
EXPECTED_COUNTS = {
    "ogc.counties": 1,
    "ogc.towns": 2,
    "ogc.villages": 4,
    "ogc.grids": 8,
    "ogc.micro_grids": 16,
    "ogc.stations": 2,
    "ogc.beats": 3,
    "ogc.buildings": 2,
    "ogc.addresses": 2,
    "ogc.hazards": 1,
    "ogc.incidents": INCIDENTS,
}


@dataclass(frozen=True)
class Server:
    base: str
    viewer: str
    dispatcher: str


def _populate(url: str) -> tuple[str, str]:
    engine = db.make_engine(url)
    import datetime as dt

    with engine.begin() as conn:
        publish_layers(
            conn, build_mini_county(), note="gdal test", author="tests",
            published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        )  # fmt: skip
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, reporter_name, reporter_phone, description, "
                "geom) "
                "SELECT '垃圾堆放', 'app', timestamptz '2024-01-01 08:00+08' + i * interval '1 day', '张三丰', "
                "'13812345678', '河边有垃圾' || i, "
                "ST_SetSRID(ST_MakePoint(120.901 + i * 0.001, 30.831 + i * 0.0005), 4326) "
                "FROM generate_series(0, :n - 1) AS i"
            ),
            {"n": INCIDENTS},
        )
        conn.execute(
            sa.text(
                "INSERT INTO buildings (code, name, is_rental, landlord_name, landlord_phone, landlord_id_card, geom) "
                "VALUES ('B1', '幸福里1幢', true, '赵六', '13600002222', '330421199001011234', "
                "        ST_SetSRID(ST_MakePoint(120.906, 30.836), 4326)),"
                "       ('B2', '幸福里2幢', false, NULL, NULL, NULL, ST_SetSRID(ST_MakePoint(120.926, 30.846), 4326))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO addresses (full_text, normalized, precision, road, house_no, geom) VALUES "
                "('嘉善县魏塘街道幸福路1号', '嘉善县魏塘街道幸福路1号', 'house', '幸福路', '1', "
                " ST_SetSRID(ST_MakePoint(120.906, 30.836), 4326)),"
                "('嘉善县魏塘街道幸福路2号', '嘉善县魏塘街道幸福路2号', 'house', '幸福路', '2', "
                " ST_SetSRID(ST_MakePoint(120.907, 30.836), 4326))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO hazards (category, severity, status, description, found_at, geom) VALUES "
                "('消防', 'high', 'open', '楼道堆放杂物', now(), ST_SetSRID(ST_MakePoint(120.916, 30.846), 4326))"
            )
        )
        viewer = create_key(conn, "viewer", "gdal-viewer")
        dispatcher = create_key(conn, "dispatcher", "gdal-dispatcher")
    engine.dispose()
    return viewer, dispatcher


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with scratch_database(database_url, "gdal") as scratch:
        viewer, dispatcher = _populate(scratch)
        env = {"GRIDMAP_DATABASE_URL": scratch, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0"}
        with api_server(env, tmp_path_factory.mktemp("server") / "uvicorn.log") as base:
            yield Server(base, viewer, dispatcher)


def gdal(tool: str, *args: str, key: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [tool]
    if key is not None:
        cmd += ["--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {key}"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} failed: {proc.stderr[-1500:]}")
    return proc


def layer_summaries(text: str) -> dict[str, str]:
    blocks = re.split(r"^Layer name: ", text, flags=re.M)[1:]
    return {block.split("\n", 1)[0].strip(): block for block in blocks}


def feature_count(block: str) -> int:
    found = re.search(r"^Feature Count: (\d+)", block, flags=re.M)
    assert found, block
    return int(found.group(1))


def test_oapif_lists_every_collection_with_counts_and_fields(server: Server) -> None:
    out = gdal("ogrinfo", "-ro", "-so", "-al", f"OAPIF:{server.base}/ogc", key=server.viewer).stdout
    layers = layer_summaries(out)
    assert set(layers) == set(EXPECTED_COUNTS)
    assert {name: feature_count(block) for name, block in layers.items()} == EXPECTED_COUNTS
    for name in ("ogc.towns", "ogc.grids", "ogc.beats"):
        assert re.search(r"^code: String", layers[name], flags=re.M), name
        assert re.search(r"^name: String", layers[name], flags=re.M), name
    for field in ("category", "reported_at", "reporter_phone", "grid_code"):
        assert re.search(rf"^{field}: ", layers["ogc.incidents"], flags=re.M), field


def test_oapif_features_are_masked_and_keep_chinese_text(server: Server) -> None:
    out = gdal("ogrinfo", "-ro", "-al", "-q", f"OAPIF:{server.base}/ogc", "ogc.buildings", key=server.dispatcher).stdout
    # The views are the public face: even a dispatcher's key reads masked data here.
    assert "landlord_phone (String) = 136****2222" in out
    assert "landlord_id_card (String) = 330421********1234" in out
    assert "name (String) = 幸福里1幢" in out
    assert "13600002222" not in out


def test_oapif_needs_a_key(server: Server) -> None:
    proc = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server.base}/ogc", check=False)
    assert proc.returncode != 0
    assert httpx.get(f"{server.base}/ogc/collections").status_code == 401
    keyed = httpx.get(f"{server.base}/ogc/collections", params={"key": server.viewer})
    assert keyed.status_code == 200 and len(keyed.json()["collections"]) == len(EXPECTED_COUNTS)


def test_ogr2ogr_pages_through_next_links_into_geopackage(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "incidents.gpkg"
    # A page size of 7 makes GDAL follow four `next` links to get all 30 incidents.
    gdal(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server.base}/ogc", "ogc.incidents",
        "-oo", "PAGE_SIZE=7", "-nln", "incidents", key=server.viewer,
    )  # fmt: skip
    summary = gdal("ogrinfo", "-ro", "-so", str(out), "incidents").stdout
    assert feature_count(summary) == INCIDENTS
    page = tmp_path / "page.gpkg"
    gdal(
        "ogr2ogr", "-f", "GPKG", str(page), f"OAPIF:{server.base}/ogc", "ogc.grids",
        "-limit", "5", "-nln", "grids", key=server.viewer,
    )  # fmt: skip
    detail = gdal("ogrinfo", "-ro", "-al", "-q", str(page)).stdout
    assert detail.count("OGRFeature(grids)") == 5
    assert "330421001001第1网格" in detail


def download(server: Server, layer: str, fmt: str, path: Path, key: str, **params: str) -> Path:
    response = httpx.get(
        f"{server.base}/export/{layer}", params={"format": fmt, **params}, headers={"X-API-Key": key}, timeout=60
    )
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


@pytest.mark.parametrize(
    ("fmt", "crs", "crs_mark"),
    [
        ("gpkg", "cgcs2000", 'ID["EPSG",4490]'),
        ("geojson", "wgs84", "WGS 84"),
        ("shp", "gcj02", "GCJ-02"),  # ESRI .prj naming: GCS_GCJ-02
        ("csv", "wgs84", None),
        ("xlsx", "wgs84", None),
    ],
)
def test_exported_files_read_back_with_gdal(server: Server, tmp_path: Path, fmt: str, crs: str, crs_mark: str) -> None:
    suffix = "zip" if fmt == "shp" else fmt
    path = download(server, "incidents", fmt, tmp_path / f"incidents.{suffix}", server.viewer, crs=crs)
    source = f"/vsizip/{path}/incidents.shp" if fmt == "shp" else str(path)
    summary = gdal("ogrinfo", "-ro", "-so", "-al", source).stdout
    assert feature_count(summary) == INCIDENTS
    if crs_mark:
        assert crs_mark in summary
    detail = gdal("ogrinfo", "-ro", "-al", "-q", source).stdout
    phone_field = "reporter_p" if fmt == "shp" else "reporter_phone"
    assert re.search(rf"{phone_field} \(\w+\) = 138\*\*\*\*5678", detail)
    assert "河边有垃圾0" in detail and "垃圾堆放" in detail
    assert "13812345678" not in detail


def test_dispatcher_export_is_unmasked_and_grids_keep_their_shape(server: Server, tmp_path: Path) -> None:
    path = download(server, "buildings", "gpkg", tmp_path / "b.gpkg", server.dispatcher)
    detail = gdal("ogrinfo", "-ro", "-al", "-q", str(path)).stdout
    assert "landlord_id_card (String) = 330421199001011234" in detail
    grids = download(server, "grids", "shp", tmp_path / "grids.zip", server.viewer)
    summary = gdal("ogrinfo", "-ro", "-so", "-al", f"/vsizip/{grids}/grids.shp").stdout
    assert feature_count(summary) == 8 and "Geometry: Polygon" in summary
    assert "Extent: (120.900000, 30.830000) - (120.940000, 30.850000)" in summary
