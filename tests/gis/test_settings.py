from __future__ import annotations

import subprocess
import sys

import pytest

from gis.core.settings import Settings


def test_plain_postgresql_url_gets_the_psycopg_driver() -> None:
    s = Settings(database_url="postgresql://u:p@db.example:5432/gm")
    assert s.database_url == "postgresql+psycopg://u:p@db.example:5432/gm"
    assert not s.uses_local_cluster


def test_empty_url_means_local_cluster() -> None:
    assert Settings(database_url="  ").uses_local_cluster


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GRIDMAP_DATABASE_URL": "mysql://x@y/z"}, "GRIDMAP_DATABASE_URL"),
        ({"GRIDMAP_DATABASE_URL": "::not a url::"}, "not a database URL"),
        ({"GRIDMAP_PG_PORT": "eighty"}, "GRIDMAP_PG_PORT"),
        ({"GRIDMAP_SNAP_TOLERANCE_M": "-3"}, "GRIDMAP_SNAP_TOLERANCE_M"),
    ],
)
def test_bad_configuration_stops_with_one_clear_line(env: dict[str, str], needle: str) -> None:
    import os

    proc = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "db", "url"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unreachable_server_is_one_clear_line() -> None:
    import os

    env = {**os.environ, "GRIDMAP_DATABASE_URL": "postgresql://u@127.0.0.1:9/nowhere"}
    proc = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "db", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr
