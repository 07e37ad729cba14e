"""The demo's year can end at any instant: report times stay inside the window with the hourly
rhythm up to its last hour, and the same seed gives the same incidents (categories, places)
whatever the end, only placed on the calendar that ends there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from demo.jiashan.incidents import INCIDENT_CATEGORIES, Hotspots, generate_incidents
from demo.jiashan.rhythm import draw_times, slot_weights
from gis.incidents.rules import CATEGORIES

END = pd.Timestamp("2026-12-03T08:20:45+08:00")


def test_times_stay_in_the_window_with_the_hourly_rhythm() -> None:
    end_s = int(END.timestamp())
    start_s = end_s - 365 * 86400
    times = draw_times("hotline_110", 200_000, start_s, end_s, "Asia/Shanghai", np.random.default_rng(1))
    assert times.min() > start_s and times.max() <= end_s
    # No pile at the end instant (the old generator clamped the rest of the last day onto it).
    assert (times == end_s).sum() <= 2
    local = pd.to_datetime(times, unit="s", utc=True).tz_convert("Asia/Shanghai")
    assert (local.hour == 20).sum() > 3 * (local.hour == 4).sum()
    # The last, partial hour (20 min 45 s) gets its share, not a full hour's.
    last = (times > end_s - 1245).sum()
    same_hour = ((local.hour == 8) & (times <= end_s - 3600)).sum() / 364
    assert 0.2 * same_hour < last < 0.7 * same_hour


def test_partial_slots_weigh_what_they_cover() -> None:
    start_s = int(pd.Timestamp("2026-12-02T10:00:00+08:00").timestamp())
    lo, hi, w = slot_weights("grid_patrol", start_s, start_s + 5400, "Asia/Shanghai")
    assert (hi - lo).tolist() == [3600, 1800]
    assert w[1] == pytest.approx(0.5 * 1.6 / 2.0 * w[0])  # 11:00 weighs 1.6 against 10:00's 2.0, half covered


def _incidents(end: pd.Timestamp) -> pd.DataFrame:
    county = MultiPolygon([box(0, 0, 20_000, 20_000)])
    rng = np.random.default_rng(5)
    buildings = rng.uniform(1000, 19_000, (500, 2))
    centres = np.array([[5000.0, 5000.0], [15_000.0, 12_000.0]])
    spots = Hotspots(
        centres={k: centres for k in ("rental_village", "industrial_park", "market", "town_centre")},
        weights={k: np.ones(2) for k in ("rental_village", "industrial_park", "market", "town_centre")},
        sigma={"rental_village": 350.0, "industrial_park": 600.0, "market": 150.0, "town_centre": 450.0},
    )
    weight = np.full(len(buildings), 1 / len(buildings))
    shapely.prepare(county)
    return generate_incidents(3000, county, spots, buildings, weight, end, np.random.default_rng(9))


def test_same_seed_same_incidents_for_any_end_and_deadlines_are_the_products() -> None:
    a = _incidents(END)
    b = _incidents(END + pd.Timedelta(days=40, hours=3))
    assert a["reported_at"].max() <= END and b["reported_at"].max() > END
    key = ["category", "source", "x", "y"]
    assert a.sort_values(key)[key].reset_index(drop=True).equals(b.sort_values(key)[key].reset_index(drop=True))
    hours = (a["deadline_at"] - a["reported_at"]).dt.total_seconds() / 3600
    assert (hours == a["category"].map(lambda c: CATEGORIES[c].deadline_hours)).all()
    assert {c.code for c in INCIDENT_CATEGORIES} >= set(a["category"])
    # The last day's incidents are mostly open; the year's due ones closed at 99.3 %.
    last_day = a[a["reported_at"] > END - pd.Timedelta(days=1)]
    assert (last_day["status"] != "closed").mean() > 0.5
    due = a["deadline_at"] <= END
    assert abs((a.loc[due, "status"] == "closed").mean() - 0.993) < 0.003
