"""Redistricting proposals (gis.analysis): a proposal on the mini county passes the boundary
validation and nests in its villages; an impossible band is reported infeasible with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from boundaries import drafts
from boundaries.findings import Rules
from boundaries.sample import MiniCounty
from boundaries.validate import validate_draft
from gis.analysis import proposal
from gis.analysis.redistrict import Infeasible, Params, polsby_popper, solve_village

TOWN = "330421001"
VILLAGE = "330421001001"


def _households(conn: Connection, per_micro_grid: int) -> None:
    conn.execute(sa.text("UPDATE areas SET households = :h WHERE layer = 'micro_grid'"), {"h": per_micro_grid})


def test_town_proposal_passes_validation(connection: Connection, mini_county: MiniCounty) -> None:
    _households(connection, 160)  # 640 a village: two grids of 320 each
    steps: list[tuple[float, str]] = []
    report = proposal.propose(
        connection, TOWN, Params(band=(300, 500)), author="tests", progress=lambda f, m: steps.append((f, m))
    )
    draft_id = report["draft_id"]
    features = drafts.load_features(connection, draft_id)
    assert len(features) == report["proposal"]["units"] == 4
    assert all(300 <= h <= 500 for h in features["households"])
    assert report["proposal"]["households"]["min"] >= 300 and report["proposal"]["households"]["max"] <= 500
    # Every unit lies in the village it names: the proposal nests.
    villages = mini_county.villages.set_index("code").geometry
    for code, parent, geom in zip(features["code"], features["parent_code"], features.geometry, strict=True):
        assert code.startswith(parent) and villages[parent].buffer(1e-9).covers(geom)
    validation = validate_draft(connection, draft_id, Rules())
    assert [f.message for f in validation.errors] == []
    assert 0 < report["proposal"]["polsby_popper"]["min"] <= 1
    assert report["addresses_changing_grid"] >= 0
    # Every micro-grid whose grid changes is listed with its new grid, one of the proposal's codes.
    assert {m["to"] for m in report["micro_grid_parents"]} <= set(features["code"])
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.9


def test_village_below_floor_is_infeasible(connection: Connection, mini_county: MiniCounty) -> None:
    # 4 micro-grids of 65 households: 260 in the village, below the floor of 300.
    with pytest.raises(Infeasible, match=r"330421001001 has 260 households in all, below the floor of 300"):
        proposal.propose(connection, VILLAGE, Params(band=(300, 500)), author="tests")
    assert connection.execute(sa.text("SELECT count(*) FROM drafts")).scalar() == 0


def test_between_one_and_two_units_is_infeasible(connection: Connection, mini_county: MiniCounty) -> None:
    _households(connection, 140)  # 560: above 500 for one grid, below 600 for two
    with pytest.raises(Infeasible, match="more than 500 for one unit and fewer than 600 for two"):
        proposal.propose(connection, VILLAGE, Params(band=(300, 500)), author="tests")


def test_run_row_reports_infeasible_reason(connection: Connection, mini_county: MiniCounty) -> None:
    run_id = proposal.create_run(connection, VILLAGE, {"band": [300, 500]}, "tests")
    status = proposal.execute_run(connection, run_id, Params(band=(300, 500)), lambda f, m: None)
    run = proposal.get_run(connection, run_id)
    assert status == "infeasible" and run is not None
    assert run["status"] == "infeasible" and "below the floor of 300" in run["message"] and run["progress"] == 1.0


def test_solver_repairs_ceiling_and_balances() -> None:
    """A strip of 10 squares of 100 households, band 300-400: max-p alone may leave units over the
    ceiling; the result has every unit in the band and contiguous."""
    import geopandas as gpd
    from shapely.geometry import box

    xs = [120.9 + i * 0.001 for i in range(11)]  # shared edges, vertex for vertex
    frame = gpd.GeoDataFrame(
        {"code": [f"m{i:02d}" for i in range(10)]},
        geometry=[box(xs[i], 30.8, xs[i + 1], 30.801) for i in range(10)],
        crs=4326,
    )
    hh = np.full(10, 100, dtype=np.int64)
    res = solve_village("v", frame, hh, hh.astype(float), Params(band=(300, 400)))
    sums = np.bincount(res.labels, weights=hh)
    assert all(300 <= s <= 400 for s in sums) and len(sums) == 3
    for lab in np.unique(res.labels):
        idx = np.flatnonzero(res.labels == lab)
        assert idx.max() - idx.min() == len(idx) - 1  # contiguous along the strip
    pp = polsby_popper(frame.to_crs(4549).geometry)
    assert np.all((pp > 0.7) & (pp <= 1.0))  # squares: π/4


def test_workload_balance_narrows_the_incident_spread() -> None:
    """10 squares of 100 households, band 300-500: max-p makes units of 4, 3 and 3 squares, the western
    squares hold most incidents. Balancing workload moves a square out of the busy western unit
    (households alone see nothing to even out), all units still in the household band."""
    import geopandas as gpd
    from shapely.geometry import box

    xs = [120.9 + i * 0.001 for i in range(11)]
    frame = gpd.GeoDataFrame(
        {"code": [f"m{i:02d}" for i in range(10)]},
        geometry=[box(xs[i], 30.8, xs[i + 1], 30.801) for i in range(10)],
        crs=4326,
    )
    hh = np.full(10, 100, dtype=np.int64)
    load = np.array([40, 40, 30, 20, 5, 5, 5, 5, 5, 5], dtype=float)
    spreads = {}
    for balance in ("households", "workload"):
        res = solve_village("v", frame, hh, load, Params(band=(300, 500), balance=balance))
        assert all(300 <= s <= 500 for s in np.bincount(res.labels, weights=hh))
        per_unit = np.bincount(res.labels, weights=load)
        spreads[balance] = per_unit.max() - per_unit.min()
    assert spreads["workload"] < spreads["households"]
