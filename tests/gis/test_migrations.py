from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gis import db

TABLES = {
    "areas",
    "generations",
    "staff",
    "buildings",
    "addresses",
    "hazards",
    "incidents",
    "incident_events",
    "audit_log",
    "api_keys",
    "drafts",
    "draft_features",
}


def test_downgrade_base_then_upgrade_head_round_trips(database_url: str) -> None:
    # A database of its own: the shared test database must keep its schema for other tests.
    url = make_url(database_url)
    scratch = url.set(database=f"{url.database}_migr").render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}_migr" WITH (FORCE)'))
    try:
        db.ensure_database(scratch)
        db.migrate(scratch)
        eng = db.make_engine(scratch)
        with eng.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES
            gist = conn.execute(
                sa.text("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")
            ).scalar()
            assert gist >= 6  # every geometry column is indexed
            srids = conn.execute(sa.text("SELECT DISTINCT srid FROM geometry_columns")).scalars().all()
            assert srids == [4326]
        db.downgrade(scratch, "base")
        with eng.connect() as conn:
            assert not TABLES & set(sa.inspect(conn).get_table_names())
        db.migrate(scratch)
        with eng.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES
            assert (
                conn.execute(
                    sa.text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'trg_%_assign'")
                ).scalar()
                == 4
            )
        eng.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}_migr" WITH (FORCE)'))
        admin.dispose()
