"""Micro-grids proposed from buildings (gis.analysis.redistrict_micro): every micro-grid of the
proposal holds households within the band, the draft passes the boundary validation (coverage,
nesting, bands), the households of the grid are preserved; a grid that cannot be cut is reported
infeasible with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import box
from sqlalchemy.engine import Connection

from boundaries import drafts
from boundaries.findings import Rules
from boundaries.sample import MiniCounty
from boundaries.validate import validate_draft
from gis.analysis import proposal
from gis.analysis.redistrict import Infeasible, Params
from gis.analysis.redistrict_micro import building_cells

GRID = "330421001001001"  # 120.90-120.91 x 30.83-30.84, ~960 m x 1,110 m


def _buildings(conn: Connection, households: list[int], seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    xs = rng.uniform(120.9005, 120.9095, len(households))
    ys = rng.uniform(30.8305, 30.8395, len(households))
    conn.execute(
        sa.text(
            "INSERT INTO buildings (code, households, geom, grid_code) "
            "VALUES (:c, :h, ST_SetSRID(ST_MakePoint(:x, :y), 4326), :g)"
        ),
        [
            {"c": f"T{k:04d}", "h": h, "x": float(x), "y": float(y), "g": GRID}
            for k, (h, x, y) in enumerate(zip(households, xs, ys, strict=True))
        ],
    )


def test_micro_grids_from_buildings_pass_validation(connection: Connection, mini_county: MiniCounty) -> None:
    rng = np.random.default_rng(7)
    households = [int(h) for h in rng.integers(1, 16, 70)]  # ~560 households in 70 houses
    _buildings(connection, households)
    steps: list[float] = []
    report = proposal.propose(
        connection,
        GRID,
        Params(band=(50, 80), layer="micro_grid"),
        author="tests",
        progress=lambda f, m: steps.append(f),
    )
    features = drafts.load_features(connection, report["draft_id"])
    assert len(features) == report["proposal"]["units"] >= 7
    assert all(50 <= h <= 80 for h in features["households"])
    # Households preserved: the buildings' total, in the report and in the draft.
    assert report["households"]["buildings"] == report["households"]["proposal"] == sum(households)
    assert int(features["households"].sum()) == sum(households)
    # Nested in the grid and covering it.
    grid = mini_county.grids.set_index("code").geometry[GRID]
    assert set(features["parent_code"]) == {GRID}
    union = shapely.union_all(np.asarray(features.geometry.values, dtype=object))
    assert abs(union.area - grid.area) < 1e-10 and grid.buffer(1e-9).covers(union)
    assert all(len(c) == len(GRID) + 2 and c.startswith(GRID) for c in features["code"])
    validation = validate_draft(connection, report["draft_id"], Rules())
    assert [f.message for f in validation.errors] == []
    assert not {"households_low", "households_high"} & validation.kinds()
    assert 0 < report["proposal"]["polsby_popper"]["min"] <= 1
    assert steps == sorted(steps) and steps[-1] >= 0.9


def test_too_few_households_is_infeasible_with_reason(connection: Connection, mini_county: MiniCounty) -> None:
    _buildings(connection, [5] * 8)  # 40 households, below the floor of 50
    with pytest.raises(Infeasible, match=r"grid 330421001001001 has 40 households in all, below the floor of 50"):
        proposal.propose(connection, GRID, Params(band=(50, 80), layer="micro_grid"), author="tests")
    assert connection.execute(sa.text("SELECT count(*) FROM drafts")).scalar() == 0


def test_a_building_above_the_ceiling_is_infeasible(connection: Connection, mini_county: MiniCounty) -> None:
    _buildings(connection, [90, 10, 10, 10, 10, 10])
    with pytest.raises(Infeasible, match=r"building cell\(s\) T0000 alone hold more than 80 households"):
        proposal.propose(connection, GRID, Params(band=(50, 80), layer="micro_grid"), author="tests")


def test_a_village_with_a_grid_without_buildings_names_it(connection: Connection, mini_county: MiniCounty) -> None:
    _buildings(connection, [10] * 30)
    with pytest.raises(Infeasible, match=r"grid 330421001001002 has no buildings"):
        proposal.propose(connection, "330421001001", Params(band=(50, 80), layer="micro_grid"), author="tests")


def test_cells_tile_a_concave_grid() -> None:
    """An L-shaped grid: the cells cover it exactly, each site is in its own cell, buildings at one point
    share a cell, and the households are kept."""
    import pandas as pd

    grid = box(0, 0, 2, 1).union(box(0, 1, 1, 2))
    buildings = pd.DataFrame(
        {
            "code": ["a", "b", "c", "d"],
            "households": [3, 4, 5, 6],
            "current": ["", "", "", ""],
            "x": [0.2, 1.8, 0.5, 0.5],
            "y": [0.2, 0.5, 1.5, 1.5],
        }
    )
    cells = building_cells(grid, buildings)
    assert int(cells["households"].sum()) == 18
    assert abs(shapely.union_all(np.asarray(cells.geometry.values, dtype=object)).area - grid.area) < 1e-9
    assert abs(float(cells.geometry.area.sum()) - grid.area) < 1e-9  # no overlaps
    sites = cells[cells["households"] > 0]
    assert len(sites) == 3 and sorted(sites["households"]) == [3, 4, 11]
