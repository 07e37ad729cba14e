from __future__ import annotations

import math
import re

import sqlalchemy as sa

from gis.core import db

TABLES = {
    "areas",
    "generations",
    "people",
    "postings",
    "org_units",
    "buildings",
    "addresses",
    "hazards",
    "incidents",
    "incident_events",
    "audit_log",
    "api_keys",
    "accounts",
    "drafts",
    "draft_features",
}


def test_downgrade_base_then_upgrade_head_round_trips(database_url: str) -> None:
    # A database of its own: the shared test database must keep its schema for other tests.
    with db.scratch_database(database_url, "migr") as scratch:
        eng = db.make_engine(scratch)
        with eng.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES
            gist = conn.execute(sa.text("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")).scalar()
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
                # incidents, buildings, addresses, hazards, and visits (migration 0019)
                conn.execute(sa.text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'trg_%_assign'")).scalar() == 5
            )
        eng.dispose()


def test_0007_fills_the_tile_position_of_existing_incidents_and_downgrades(database_url: str) -> None:
    index_sql = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_incidents_time_tiles'"
    columns_sql = (
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'incidents' AND column_name LIKE 'merc_%'"
    )
    with db.scratch_database(database_url, "m0007") as scratch:
        db.downgrade(scratch, "0006")
        eng = db.make_engine(scratch)
        with eng.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO incidents (category, source, reported_at, geom) "
                    "VALUES ('x', 'app', now(), ST_SetSRID(ST_MakePoint(120.9, 30.84), 4326))"
                )
            )
        db.migrate(scratch, "0007")
        with eng.connect() as conn:
            # The rows present before the upgrade get their position (the pixel formula of the tests).
            merc_x, merc_y = conn.execute(sa.text("SELECT merc_x, merc_y FROM incidents")).one()
            assert merc_x == math.floor((120.9 + 180) / 360 * 2**30)
            lat = math.radians(30.84)
            assert merc_y == math.floor((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * 2**30)
            assert "INCLUDE (id, merc_x, merc_y, geom)" in conn.execute(sa.text(index_sql)).scalar_one()
        db.downgrade(scratch, "0006")
        with eng.connect() as conn:
            assert conn.execute(sa.text(columns_sql)).scalar_one() == 0
            assert conn.execute(sa.text(index_sql)).scalar_one().endswith("(reported_at) INCLUDE (id, geom)")
        eng.dispose()


def test_the_open_incidents_index_matches_the_duplicate_checks_statuses(connection) -> None:  # type: ignore[no-untyped-def]
    # The planner uses the partial index only when the query's condition matches its predicate;
    # the migration holds a frozen copy of the open statuses, which must still be the rules' list.
    from gis.incidents.rules import OPEN_STATUSES

    indexdef = connection.execute(
        sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_incidents_open_geom'")
    ).scalar_one()
    assert "USING gist (geom)" in indexdef
    assert sorted(re.findall(r"'(\w+)'", indexdef)) == sorted(OPEN_STATUSES)


def test_0010_moves_the_open_incidents_the_old_trigger_back_dated(database_url: str) -> None:
    import datetime as dt

    from boundaries.generations import publish_layers
    from boundaries.sample import build_mini_county

    west, east = "330421001001001", "330421001001002"
    layers = build_mini_county()
    grids = layers["grid"].copy()
    merged = grids.loc[grids["code"].isin([west, east])].geometry.union_all()
    grids = grids[grids["code"] != east]
    grids.loc[grids["code"] == west, "geometry"] = merged
    micro = layers["micro_grid"].copy()
    micro.loc[micro["parent_code"] == east, "parent_code"] = west
    insert = (
        "INSERT INTO incidents (category, source, reported_at, status, geom) "
        "VALUES ('x', 'app', '2024-06-01', :s, ST_Point(120.915, 30.833, 4326)) RETURNING id"
    )
    with db.scratch_database(database_url, "m0010") as scratch:
        db.downgrade(scratch, "0009")
        eng = db.make_engine(scratch)
        with eng.begin() as conn:
            first = publish_layers(
                conn, layers, note="a", author="t", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            )
            second = publish_layers(
                conn,
                {"grid": grids, "micro_grid": micro},
                note="b",
                author="t",
                published_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            )
            # The old trigger: both under the generation of their reported time, in the east grid.
            ids = {s: conn.execute(sa.text(insert), {"s": s}).scalar_one() for s in ("dispatched", "closed")}
        db.migrate(scratch, "0010")
        with eng.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, grid_code, generation_id FROM incidents ORDER BY id")).all()
            assert {r.id: (r.grid_code, r.generation_id) for r in rows} == {
                ids["dispatched"]: (west, second),  # open: the generation in force
                ids["closed"]: (east, first),  # closed: the generation of its time
            }
        db.downgrade(scratch, "0009")
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regprocedure('gridmap_final_statuses(text)')")).scalar() is None
            body = conn.execute(sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'gridmap_assign_row'")).scalar_one()
            assert "at := NEW.reported_at;" in body and "gridmap_final_statuses" not in body
        eng.dispose()


def test_0011_moves_staff_into_people_and_postings(database_url: str) -> None:
    with db.scratch_database(database_url, "m0011") as scratch:
        db.downgrade(scratch, "0009")
        eng = db.make_engine(scratch)
        card = "33042119900101001X"
        with eng.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO staff (grid_code, role, name, phone, id_card, active) VALUES "
                    "('G1', 'grid_leader', '张三', '13900000001', :c, true), "
                    "('G2', 'community_police', '张三', '13900000001', :c, true), "
                    "('G1', 'grid_worker', '李四', NULL, NULL, false)"
                ),
                {"c": card},
            )
        db.migrate(scratch)
        with eng.begin() as conn:
            people = conn.execute(sa.text("SELECT name, status FROM people ORDER BY id")).all()
            assert [tuple(p) for p in people] == [("张三", "active"), ("李四", "left")]  # one person per ID card
            postings = conn.execute(sa.text("SELECT role, area_code, ends_on IS NULL FROM postings ORDER BY id")).all()
            assert [tuple(p) for p in postings] == [
                ("grid_leader", "G1", True),
                ("community_police", "G2", True),
                ("grid_worker", "G1", False),  # inactive: kept as ended history
            ]
            # The staff view still reads and takes rows as before.
            conn.execute(sa.text("INSERT INTO staff (grid_code, role, name) VALUES ('G3', 'aux_police', '王五')"))
            view = conn.execute(sa.text("SELECT grid_code, role, name, active FROM staff ORDER BY id")).all()
            assert [tuple(v) for v in view][-1] == ("G3", "aux_police", "王五", True)
            assert sum(v.active for v in view) == 3
        db.downgrade(scratch, "0009")
        with eng.connect() as conn:
            back = conn.execute(sa.text("SELECT grid_code, role, name, active FROM staff ORDER BY id")).all()
            assert [tuple(b) for b in back] == [
                ("G1", "grid_leader", "张三", True),
                ("G2", "community_police", "张三", True),
                ("G1", "grid_worker", "李四", False),
                ("G3", "aux_police", "王五", True),
            ]
        eng.dispose()


def test_0013_gives_each_existing_key_an_unscoped_account(database_url: str) -> None:
    from gis.people.keys import create_key, verify_key

    with db.scratch_database(database_url, "m0013") as scratch:
        db.downgrade(scratch, "0012")
        eng = db.make_engine(scratch)
        with eng.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO api_keys (name, role, prefix, key_hash) VALUES "
                    "('old-viewer', 'viewer', 'p1', 'h1'), ('old-admin', 'admin', 'p2', 'h2')"
                )
            )
        db.migrate(scratch)
        with eng.begin() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT k.name, a.name AS account, a.role, a.scope FROM api_keys k "
                    "JOIN accounts a ON a.id = k.account_id ORDER BY k.id"
                )
            ).all()
            assert [tuple(r) for r in rows] == [
                ("old-viewer", "old-viewer", "viewer", []),
                ("old-admin", "old-admin", "admin", []),
            ]
            # New accounts are numbered after the migrated ones.
            principal = verify_key(conn, create_key(conn, "reporter", "new"))
            assert principal is not None and principal.account_id == 3 and principal.scope.whole
        db.downgrade(scratch, "0012")
        with eng.connect() as conn:
            roles = conn.execute(sa.text("SELECT name, role FROM api_keys ORDER BY id")).all()
            assert [tuple(r) for r in roles] == [("old-viewer", "viewer"), ("old-admin", "admin"), ("new", "reporter")]
        eng.dispose()
