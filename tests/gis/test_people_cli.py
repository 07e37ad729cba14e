"""``gridmap import staff|org-units`` and ``gridmap export staff`` as a person runs them, on a
database of their own (the commands commit)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from gis.core import db
from gis.people.rules import id_card_check_char

ROOT = Path(__file__).resolve().parents[2]
G1 = "330421001001001"


def _card(seq: int) -> str:
    body = f"33042119800202{seq:03d}"
    return body + id_card_check_char(body)


def _gridmap(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url}
    cmd = [sys.executable, "-c", "from api.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_import_export_commands(database_url: str, tmp_path: Path) -> None:
    from boundaries.generations import publish_layers
    from boundaries.sample import build_mini_county

    with db.scratch_database(database_url, "staffcli") as url:
        engine = db.make_engine(url)
        with engine.begin() as conn:
            published = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            publish_layers(conn, build_mini_county(), note="mini", author="tests", published_at=published)
        units = pd.DataFrame(
            [
                ("T1", "罗星街道综合信息指挥室", "town_centre", "330421001", None, False),
                ("V1", "东门村工作站", "village_station", "330421001001", "T1", True),
            ],
            columns=["code", "name", "kind", "area_code", "parent_code", "is_key"],
        )
        units.to_excel(tmp_path / "units.xlsx", index=False)
        done = _gridmap(url, "import", "org-units", str(tmp_path / "units.xlsx"))
        assert done.returncode == 0 and "2 stored" in done.stdout, done.stderr

        roster = pd.DataFrame(
            [
                ("王网格", "13900000001", _card(1), "网格长", G1, "V1", "2024-01-01"),
                ("赵民警", "13900000002", _card(2), "总网格长", "330421001001", "V1", "2024-01-01"),
            ],
            columns=["姓名", "手机", "身份证号", "角色", "区域代码", "单位", "开始日期"],
        )
        roster.to_csv(tmp_path / "staff.csv", index=False, encoding="gbk")
        done = _gridmap(url, "import", "staff", str(tmp_path / "staff.csv"))
        assert done.returncode == 0 and "2 stored" in done.stdout, done.stdout + done.stderr

        out = tmp_path / "export.xlsx"
        done = _gridmap(url, "export", "staff", "--out", str(out), "--personal-data")
        assert done.returncode == 0, done.stderr
        exported = pd.read_excel(out, dtype=str)
        assert exported["id_card"].tolist() == [_card(1), _card(2)]
        assert exported["org_unit"].tolist() == ["V1", "V1"] and exported["layer"].tolist() == ["grid", "village"]

        bad = roster.assign(手机=["13900000001", "555"])
        bad.to_csv(tmp_path / "bad.csv", index=False, encoding="gbk")
        done = _gridmap(url, "import", "staff", str(tmp_path / "bad.csv"))
        assert done.returncode == 1 and "row 3, phone" in done.stderr, done.stderr
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM postings")).scalar() == 2  # nothing more
            logged = conn.execute(sa.text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
        assert logged.count("org_unit.create") == 2 and logged.count("import.staff") == 1 and "export" in logged
        engine.dispose()
