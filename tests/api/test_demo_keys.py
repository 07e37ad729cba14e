"""`gridmap demo` hands out working API keys: written when the demo is loaded, and again when the
keys file is missing or its keys no longer work (data loaded by `gridmap seed`, keys revoked)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from api.cli.demo import demo_keys_work, write_demo_keys
from gis.core import db
from gis.core.settings import Settings
from gis.core.vocab import ROLES
from gis.people import keys


def test_demo_keys_are_written_checked_and_replaced(database_url: str, tmp_path: Path) -> None:
    with db.scratch_database(database_url, "demokeys") as url:
        settings = Settings(database_url=url, var_dir=tmp_path)
        assert not demo_keys_work(settings)  # no file yet
        write_demo_keys(settings)
        path = tmp_path / "demo-keys.txt"
        lines = [line.split("\t") for line in path.read_text().splitlines()]
        assert [role for role, _ in lines] == list(ROLES)
        assert path.stat().st_mode & 0o777 == 0o600
        assert demo_keys_work(settings)
        engine = db.make_engine(url)
        with engine.begin() as conn:
            for role, key in lines:
                principal = keys.verify_key(conn, key)
                assert principal is not None and principal.role == role
            first_id = conn.execute(sa.text("SELECT min(id) FROM api_keys")).scalar_one()
            keys.revoke_key(conn, first_id)
        engine.dispose()
        assert not demo_keys_work(settings)  # a revoked key: the demo writes new ones
