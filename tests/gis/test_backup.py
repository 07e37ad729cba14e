"""`gridmap db backup` / `restore` round-trip the whole database (pg_dump / pg_restore)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from boundaries.generations import publish_layers
from gis.core import db


@pytest.fixture
def scratch_url(database_url: str) -> Iterator[str]:
    with db.scratch_database(database_url, "backup") as scratch:
        yield scratch


def _fingerprint(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {
            "areas": conn.execute(
                sa.text("SELECT count(*), md5(string_agg(code || ST_AsText(geom), ',' ORDER BY id)) FROM areas")
            ).one(),
            "hazards": conn.execute(
                sa.text("SELECT count(*), md5(string_agg(grid_code || category, ',' ORDER BY id)) FROM hazards")
            ).one(),
            "triggers": conn.execute(
                sa.text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'trg_%_assign'")
            ).scalar(),
        }


def test_backup_then_restore_round_trips(scratch_url: str, tmp_path: Path) -> None:
    import datetime as dt

    from boundaries.sample import build_mini_county

    engine = db.make_engine(scratch_url)
    with engine.begin() as conn:
        publish_layers(
            conn, build_mini_county(), note="n", author="t", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
        conn.execute(
            sa.text(
                "INSERT INTO hazards (category, severity, status, found_at, geom) "
                "SELECT 'gas', 'low', 'open', now(), ST_SetSRID(ST_MakePoint(120.90 + i * 0.0004, 30.835), 4326) "
                "FROM generate_series(1, 90) i"
            )
        )
    before = _fingerprint(engine)
    assert before["hazards"][0] == 90  # type: ignore[index]

    dump = tmp_path / "gridmap.dump"
    db.backup(scratch_url, dump)
    assert dump.stat().st_size > 0
    assert not (tmp_path / "gridmap.dump.partial").exists()

    with engine.begin() as conn:  # damage: lose rows, change others
        conn.execute(sa.text("DELETE FROM hazards WHERE id % 2 = 0"))
        conn.execute(sa.text("UPDATE areas SET name = 'x'"))
    assert _fingerprint(engine) != before
    engine.dispose()

    db.restore(scratch_url, dump)
    engine = db.make_engine(scratch_url)
    assert _fingerprint(engine) == before
    # the restored database still assigns new rows (functions and triggers came back)
    with engine.begin() as conn:
        grid = conn.execute(
            sa.text(
                "INSERT INTO hazards (category, severity, status, found_at, geom) "
                "VALUES ('gas', 'low', 'open', now(), ST_SetSRID(ST_MakePoint(120.905, 30.832), 4326)) "
                "RETURNING grid_code"
            )
        ).scalar()
    assert grid == "330421001001001"
    engine.dispose()


def test_restore_of_a_missing_or_broken_file_leaves_the_database_alone(scratch_url: str, tmp_path: Path) -> None:
    with pytest.raises(db.DatabaseError, match="no backup file"):
        db.restore(scratch_url, tmp_path / "nope.dump")
    bad = tmp_path / "bad.dump"
    bad.write_bytes(b"PGDMP not really a dump")
    with pytest.raises(db.DatabaseError, match="pg_restore failed"):
        db.restore(scratch_url, bad)
    engine = db.make_engine(scratch_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
