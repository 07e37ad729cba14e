"""A small demo: 0 or 100 incidents build (they crashed pushing a share of the incidents outside
the county when that share rounded to none); the share outside stays OUTSIDE_SHARE, rounded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from demo.jiashan import build_dataset
from demo.jiashan.incidents import OUTSIDE_SHARE, Hotspots, generate_incidents

END = pd.Timestamp("2026-12-03T08:20:45+08:00")
COUNTY = MultiPolygon([box(0, 0, 20_000, 20_000)])
KINDS = ("rental_village", "industrial_park", "market", "town_centre")


def _incidents(count: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    buildings = rng.uniform(1000, 19_000, (500, 2))
    centres = np.array([[5000.0, 5000.0], [15_000.0, 12_000.0]])
    spots = Hotspots(
        centres={k: centres for k in KINDS},
        weights={k: np.ones(2) for k in KINDS},
        sigma={"rental_village": 350.0, "industrial_park": 600.0, "market": 150.0, "town_centre": 450.0},
    )
    weight = np.full(len(buildings), 1 / len(buildings))
    shapely.prepare(COUNTY)
    return generate_incidents(count, COUNTY, spots, buildings, weight, END, np.random.default_rng(9))


def _outside(table: pd.DataFrame) -> int:
    points = shapely.points(table["x"].to_numpy(), table["y"].to_numpy())
    return int((~shapely.contains(COUNTY, points)).sum())


@pytest.mark.parametrize("count", [0, 1, 100, 3000])
def test_any_count_gets_its_share_outside(count: int) -> None:
    table = _incidents(count)
    assert len(table) == count
    assert _outside(table) == round(count * OUTSIDE_SHARE)  # 0, 0, 0 and 3
    assert table["external_id"].is_unique


def test_small_dataset_builds() -> None:
    # One full build (about a minute): 0 incidents is covered by generate_incidents above.
    data = build_dataset(7, incidents=100)
    assert len(data.incidents) == 100
    assert len(data.grids) > 0  # the boundaries do not depend on the incident count
