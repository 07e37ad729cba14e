"""A demo seeded earlier is topped up to a later instant: only the incidents reported in between are
added (the generator's, deterministic given seed and window), none twice, the earlier ones unchanged,
and a long sleep adds at most a year. A small yearly volume keeps it quick; the geometry is full."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from demo.jiashan.load import seed_jiashan
from demo.jiashan.topup import MAX_GAP, demo_state, incidents_between, top_up
from gis.core import db

pytestmark = pytest.mark.slow  # builds the demo's geometry

SEED = 3
PER_YEAR = 4000
T0 = pd.Timestamp("2026-11-20T10:30:00+08:00")
T1 = pd.Timestamp("2026-11-23T15:45:30+08:00")


def _incidents(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, source, external_id, status, reported_at, closed_at FROM incidents ORDER BY id")
        ).all()
    return pd.DataFrame(rows, columns=["id", "source", "external_id", "status", "reported_at", "closed_at"])


def test_top_up_adds_only_the_new_window(database_url: str) -> None:
    with db.scratch_database(database_url, "topup") as url:
        engine = db.make_engine(url, pool_size=1, max_overflow=0)
        try:
            seed_jiashan(engine, seed=SEED, incidents=PER_YEAR, end=T0)
            before = _incidents(engine)
            assert len(before) == PER_YEAR and before["reported_at"].max() <= T0
            with engine.connect() as conn:
                state = demo_state(conn)
            assert state is not None and (state.seed, state.per_year, state.until) == (SEED, PER_YEAR, T0)
            open_then = before[(before["status"] != "closed")]

            report = top_up(engine, T1)
            assert report is not None and (report.start, report.end) == (T0, T1)
            after = _incidents(engine)
            new = after[after["reported_at"] > T0]
            # The generator's incidents of the window, no more: the same for the same seed and window.
            expected = incidents_between(SEED, PER_YEAR, T0, T1)
            assert report.inserted == len(new) == len(expected) > 0
            assert sorted(new["reported_at"]) == sorted(expected["reported_at"])
            assert new["reported_at"].max() <= T1 and new["reported_at"].max() > T1 - pd.Timedelta(hours=12)
            # Same density as the year: about 3.2 days' share of it (Poisson-sized: wide bounds).
            share = PER_YEAR * (T1 - T0) / pd.Timedelta(days=365)
            assert 0.5 * share < len(new) < 1.6 * share
            # Nothing twice; the incidents up to T0 are the same rows, numbers carry on per source.
            assert not after.duplicated(["source", "external_id"]).any()
            old = after[after["id"].isin(before["id"])]
            assert len(old) == len(before) and (old["reported_at"].to_numpy() == before["reported_at"].to_numpy()).all()
            assert len(after[after["reported_at"] <= T0]) == len(before)
            for source, ids in new.groupby("source")["external_id"]:
                assert ids.min() > before.loc[before["source"] == source, "external_id"].max()
            # Incidents still open at T0 moved along, never back, closed after T0 if closed now.
            moved = after.set_index("id").loc[open_then["id"]]
            assert report.advanced > 0 and (moved["status"] == "closed").sum() > 0
            assert (moved.loc[moved["status"] == "closed", "closed_at"] > T0).all()
            # The recent ones are still open: the window's last day is not all closed.
            last_day = new[new["reported_at"] > T1 - pd.Timedelta(days=1)]
            assert (last_day["status"] != "closed").mean() > 0.5

            # Topping up to the same instant adds nothing; a year-long sleep adds a year at most.
            assert top_up(engine, T1).inserted == 0  # type: ignore[union-attr]
            far = T1 + pd.Timedelta(days=500)
            capped = top_up(engine, far)
            assert capped is not None and capped.start == far - MAX_GAP
            assert 0.9 * PER_YEAR < capped.inserted < 1.1 * PER_YEAR
            with engine.connect() as conn:
                assert demo_state(conn).until == far  # type: ignore[union-attr]
                stored = conn.execute(sa.text("SELECT count(*), max(reported_at) FROM incidents")).one()
                gaps = conn.execute(
                    sa.text("SELECT count(*) FROM incidents WHERE reported_at > :a AND reported_at <= :b"),
                    {"a": T1.to_pydatetime(), "b": (far - MAX_GAP).to_pydatetime()},
                ).scalar_one()
            assert stored[0] == len(after) + capped.inserted and stored[1] <= far
            assert gaps == 0
        finally:
            engine.dispose()
