"""``gridmap import places FILE`` as a person runs it, on a database of its own (the command
commits): a GBK CSV is imported, a file with a bad row is refused naming it and stores nothing."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from gis.core import db
from gis.spatial.address_text import parse_address

ROOT = Path(__file__).resolve().parents[2]


def _gridmap(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url}
    cmd = [sys.executable, "-c", "from api.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_import_places_command(database_url: str, tmp_path: Path) -> None:
    from boundaries.generations import publish_layers
    from boundaries.sample import build_mini_county

    with db.scratch_database(database_url, "placescli") as url:
        engine = db.make_engine(url)
        with engine.begin() as conn:
            published = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            publish_layers(conn, build_mini_county(), note="mini", author="tests", published_at=published)
            p = parse_address("魏塘街道中山路128号3幢")
            conn.execute(
                sa.text(
                    "INSERT INTO addresses (full_text, normalized, road, house_no, building_no, precision, geom) "
                    "VALUES (:t, :n, :r, :h, :b, 'building', ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326))"
                ),
                {"t": p.normalized, "n": p.normalized, "r": p.road, "h": p.house_no, "b": p.building_no},
            )
        try:
            good = tmp_path / "places.csv"
            good.write_bytes("名称,别名,类型,地址\n金色家园,金色小区,小区,魏塘街道中山路128号\n".encode("gbk"))
            done = _gridmap(url, "import", "places", str(good))
            assert done.returncode == 0, done.stdout + done.stderr
            assert "1 new" in done.stdout

            bad = tmp_path / "bad.csv"
            bad.write_text(
                "名称,类型,经度,纬度,坐标系\n西塘农贸市场,market,120.93,30.84,gcj02\n某某超市,market,121.9,30.84,\n",
                encoding="utf-8",
            )
            done = _gridmap(url, "import", "places", str(bad))
            assert done.returncode == 1
            assert "row 3, lon 121.9" in done.stderr and "outside the county" in done.stderr
            assert "nothing was stored" in done.stderr
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT name FROM places")).scalars().all() == ["金色家园"]
        finally:
            engine.dispose()
