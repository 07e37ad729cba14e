"""gis.core.replicas without running a formation: which URLs the settings resolve to, what the
multi-host URL says to libpq, and the refusals (tests/api/test_failover.py runs a real one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from gis.core import cluster, db, replicas
from gis.core.cluster import ClusterError
from gis.core.settings import Settings


def _made(var_dir: Path, ports: tuple[int, ...] = (41001, 41002)) -> replicas.Formation:
    formation = replicas.Formation(var_dir / "pgaf", 41000, ports)
    formation.base.mkdir(parents=True)
    replicas.save(formation)
    return formation


def test_a_formation_made_by_db_up_becomes_the_database_url(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, database_url=None, read_database_url=None, pg_database="gm")
    assert replicas.configured(settings) is None
    assert db.database_url(settings) == cluster.url(settings)
    assert db.read_database_url(settings) is None  # a single node: reads go where writes go

    _made(tmp_path)
    url = make_url(db.database_url(settings))
    assert url.database == "gm"
    assert url.query["host"] == "127.0.0.1,127.0.0.1" and url.query["port"] == "41001,41002"
    assert url.query["target_session_attrs"] == "read-write"
    read = make_url(db.read_database_url(settings) or "")
    assert read.query["target_session_attrs"] == "prefer-standby" and read.query["port"] == "41001,41002"


def test_a_configured_url_wins_over_the_formation(tmp_path: Path) -> None:
    _made(tmp_path)
    external = "postgresql+psycopg://u:p@db.example:5432/x"
    settings = Settings(var_dir=tmp_path, database_url=external, read_database_url=None)
    assert db.database_url(settings) == external
    assert db.read_database_url(settings) is None
    standby = "postgresql+psycopg://u:p@standby.example:5432/x"
    assert db.read_database_url(Settings(var_dir=tmp_path, database_url=external, read_database_url=standby)) == standby


def test_the_psycopg_dialect_passes_every_host_to_libpq(tmp_path: Path) -> None:
    formation = _made(tmp_path)
    engine = db.make_engine(replicas.url(formation, "gm"))
    try:
        _, params = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    assert params["host"] == "127.0.0.1,127.0.0.1" and params["port"] == "41001,41002"
    assert params["target_session_attrs"] == "read-write" and params["connect_timeout"] == "3"


def test_a_formation_keeps_its_size(tmp_path: Path) -> None:
    formation = _made(tmp_path)
    with pytest.raises(ClusterError, match="has 1 standby"):
        replicas.create(formation.base, 41000, 2)
    with pytest.raises(ClusterError, match="no formation"):
        replicas.create(tmp_path / "elsewhere", 41000, None)
