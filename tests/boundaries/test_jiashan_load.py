"""Loading a reduced Jiashan demo (5,000 incidents, full geometry) into a database of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from demo.jiashan.dataset import JiashanDataset, build_dataset
from demo.jiashan.load import NOTE, DemoLoadError, foreign_data, load_dataset
from gis.core import db
from gis.spatial.lookup import LookupService
from gis.spatial.verify import verify

INCIDENTS = 5000


@pytest.fixture(scope="module")
def dataset() -> JiashanDataset:
    return build_dataset(seed=1, incidents=INCIDENTS)


@pytest.fixture(scope="module")
def demo_engine(database_url: str) -> Iterator[Engine]:
    url = make_url(database_url)
    name = f"{url.database}_demo"
    admin = db.make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    scratch = url.set(database=name).render_as_string(hide_password=False)
    db.ensure_database(scratch)
    db.migrate(scratch)
    engine = db.make_engine(scratch)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in (
                "postings",
                "people",
                "org_units",
                "buildings",
                "addresses",
                "hazards",
                "incidents",
                "inspections",
                "roads",
            )
        }


@pytest.mark.slow
def test_load_assign_and_replace(dataset: JiashanDataset, demo_engine: Engine) -> None:
    report = load_dataset(demo_engine, dataset)
    assert not report.replaced
    counts = _counts(demo_engine)
    assert counts["postings"] == len(dataset.staff) and counts["org_units"] == len(dataset.org_units)
    assert counts["people"] == dataset.staff["id_card"].nunique()
    assert counts["buildings"] == len(dataset.buildings) >= 100_000
    # Hazards are found by the year of inspections (demo.jiashan.inspections), every one from one.
    assert counts["hazards"] == report.fieldwork["hazards"] > 1000
    assert counts["inspections"] == report.fieldwork["inspections"] > counts["hazards"]
    assert counts["incidents"] == INCIDENTS
    assert counts["roads"] == len(dataset.roads) > 0  # the planned town roads, as lines (demo.jiashan.roads)
    # Standard addresses are unique by normalized text; the generator's are already unique.
    assert counts["addresses"] == dataset.addresses["full_text"].nunique() >= 100_000
    assert report.counts == {k: counts["postings" if k == "staff" else k] for k in report.counts}
    with demo_engine.connect() as conn:
        sources = conn.execute(sa.text("SELECT DISTINCT source FROM hazards")).scalars().all()
        states = dict(conn.execute(sa.text("SELECT status, count(*) FROM hazards GROUP BY 1")).all())
        levels = dict(conn.execute(sa.text("SELECT escalation_level, count(*) FROM hazards GROUP BY 1")).all())
    assert sources == ["inspection"]
    # Most were rectified in the year; some are still open at its end, some overdue and escalated.
    assert states["rectified"] > 0.9 * counts["hazards"]
    assert states.get("open", 0) + states.get("notified", 0) + states.get("rectifying", 0) > 0
    assert states.get("overdue", 0) > 0 and levels.get("county", 0) > 0

    with demo_engine.connect() as conn:
        gen = conn.execute(sa.text("SELECT id, note, author, published_at FROM generations")).one()
        assert (gen.id, gen.note, gen.author) == (report.generation, NOTE, "demo")
        layers = dict(conn.execute(sa.text("SELECT layer, count(*) FROM areas GROUP BY layer")).all())
        assert layers["county"] == 1 and layers["town"] == 9 and layers["village"] == 174
        assert 700 <= layers["grid"] <= 820 and 5000 <= layers["micro_grid"] <= 6000
        assert 8 <= layers["station"] <= 12 and 100 <= layers["beat"] <= 160
        roles = dict(conn.execute(sa.text("SELECT role, count(*) FROM staff WHERE active GROUP BY role")).all())
        assert roles["grid_worker"] == 776 and roles["aux_police"] == 628
        # Lookups show the whole team: on a grid of a key village, the village's chief grid leader
        # (a community police officer) and the beat's officer, as well as the grid's own staff.
        key_grid = conn.execute(
            sa.text(
                "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)) AS x, ST_Y(ST_PointOnSurface(g.geom)) AS y "
                "FROM areas g JOIN org_units ou ON ou.area_code = g.parent_code AND ou.is_key "
                "WHERE g.layer = 'grid' ORDER BY g.code DESC LIMIT 1"
            )
        ).one()
        answer = LookupService().lookup_point(conn, key_grid.x, key_grid.y)
        team = {(p["role"], p["layer"]) for p in answer["staff"]}
        assert {("grid_leader", "grid"), ("grid_worker", "grid"), ("chief_grid_leader", "village")} <= team
        assert {("community_police", "village"), ("beat_officer", "beat"), ("liaison_cadre", "village")} <= team
        context = conn.execute(sa.text("SELECT attrs -> 'context' FROM areas WHERE layer = 'county'")).scalar_one()
        names = {f["properties"]["name"] for f in context["features"]}
        assert {"南湖区", "秀洲区", "平湖市"} <= names
        # Every point is assigned by the product (the generator's answer is never stored).
        for table in ("buildings", "addresses", "hazards", "incidents"):
            missing = conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE assign_status IS NULL OR generation_id IS NULL")
            ).scalar()
            assert missing == 0, table
        status = dict(conn.execute(sa.text("SELECT assign_status, count(*) FROM incidents GROUP BY 1")).all())
        assert status["inside"] >= 0.98 * INCIDENTS
        assert status.get("outside_jurisdiction", 0) <= 0.01 * INCIDENTS
        unassigned_buildings = conn.execute(
            sa.text("SELECT count(*) FROM buildings WHERE grid_code IS NULL OR beat_code IS NULL")
        ).scalar()
        assert unassigned_buildings == 0
        # The generator's private bookkeeping agrees with the product's assignment of buildings.
        sample = conn.execute(sa.text("SELECT code, micro_grid_code FROM buildings ORDER BY id LIMIT 2000")).all()
    expected = dataset.buildings["_gen_micro_grid"].to_numpy()
    agree = sum(expected[int(code[-7:])] == micro for code, micro in sample)
    assert agree >= 0.99 * len(sample)

    with demo_engine.begin() as conn:
        checks = verify(conn)
    assert all(c.disagreeing == 0 for c in checks), [(c.table, c.disagreeing) for c in checks]

    # A second load replaces the demo: same counts, a new generation, nothing duplicated.
    again = load_dataset(demo_engine, dataset)
    assert again.replaced and again.generation != report.generation
    assert _counts(demo_engine) == counts
    with demo_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM generations")).scalar() == 1


def test_refuses_to_replace_other_data(dataset: JiashanDataset, demo_engine: Engine) -> None:
    with demo_engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO audit_log (actor, action, target) VALUES ('alice', 'import.incidents', 'x.csv')")
        )
    try:
        with demo_engine.connect() as conn:
            assert foreign_data(conn) == ["audited writes by others (import.incidents x1)"]
        with pytest.raises(DemoLoadError, match="not the demo's.*import.incidents.*--force"):
            load_dataset(demo_engine, dataset)
    finally:
        with demo_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_log WHERE actor = 'alice'"))
