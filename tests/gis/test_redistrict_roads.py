"""Roads as preferred borders in redistricting proposals (gis.analysis.redistrict_roads): with a road
crossing a village, the units' borders follow it (a higher share of the borders along roads than
without the road), a piece too small to stand alone still joins across the road, and the proposal
reports the share for itself and for the grids in force."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import sqlalchemy as sa
from shapely.geometry import LineString, box
from sqlalchemy.engine import Connection

from boundaries.sample import MiniCounty
from gis.analysis import proposal
from gis.analysis.redistrict import Params, queen_neighbors
from gis.analysis.redistrict_roads import border_share, links, road_buffer, solve_with_roads
from gis.spatial.roads import roads_within, store_roads

D = 0.001  # ~96 m x 111 m squares


def _village(cols: int = 8, rows: int = 4) -> gpd.GeoDataFrame:
    cells = [
        box(120.9 + c * D, 30.8 + r * D, 120.9 + (c + 1) * D, 30.8 + (r + 1) * D)
        for r in range(rows)
        for c in range(cols)
    ]
    return gpd.GeoDataFrame({"code": [f"m{i:02d}" for i in range(len(cells))]}, geometry=cells, crs=4326)


def _road_at_column(col: int) -> LineString:
    return LineString([(120.9 + col * D, 30.79), (120.9 + col * D, 30.81)])


def _contiguous(frame: gpd.GeoDataFrame, labels: np.ndarray) -> bool:
    nb = queen_neighbors(frame)
    for lab in np.unique(labels):
        members = set(np.flatnonzero(labels == lab).tolist())
        seen, stack = {min(members)}, [min(members)]
        while stack:
            for j in nb[stack.pop()]:
                if j in members and j not in seen:
                    seen.add(j)
                    stack.append(j)
        if seen != members:
            return False
    return True


def test_borders_follow_a_road_across_the_village() -> None:
    """8 x 4 squares of 50 households, band 300-500; a north-south road along the edge between the
    third and fourth columns. Without roads no unit border runs there; with it, the whole road is
    a border, and the measured share of borders along roads is higher."""
    frame = _village()
    hh = np.full(len(frame), 50, dtype=np.int64)
    buffer = road_buffer([_road_at_column(3)])
    measure = links(frame.to_crs(4549), queen_neighbors(frame), buffer)
    shares = {}
    for use_roads in (False, True):
        res, _found = solve_with_roads(
            "v", frame, hh, hh.astype(float), Params(band=(300, 500)), buffer if use_roads else None
        )
        sums = np.bincount(res.labels, weights=hh)
        assert all(300 <= s <= 500 for s in sums) and sums.sum() == hh.sum()
        assert _contiguous(frame, res.labels)
        shares[use_roads] = border_share(res.labels, measure)
    assert shares[True]["share"] > shares[False]["share"]
    # Every edge along the road separates two units: no unit straddles it.
    col = np.arange(len(frame)) % 8
    res, _ = solve_with_roads("v", frame, hh, hh.astype(float), Params(band=(300, 500)), buffer)
    west = set(res.labels[col <= 2].tolist())
    east = set(res.labels[col >= 3].tolist())
    assert not west & east
    assert shares[True]["on_road_m"] >= 4 * 110  # the four edges along the road, ~111 m each


def test_a_piece_below_the_floor_joins_across_the_road() -> None:
    """A road one column from the western edge leaves 4 squares (200 households) west of it, below the
    floor of 300: one link across the road is kept, and the proposal stays feasible."""
    frame = _village()
    hh = np.full(len(frame), 50, dtype=np.int64)
    res, _found = solve_with_roads(
        "v", frame, hh, hh.astype(float), Params(band=(300, 500)), road_buffer([_road_at_column(1)])
    )
    sums = np.bincount(res.labels, weights=hh)
    assert all(300 <= s <= 500 for s in sums) and sums.sum() == 1600
    assert any("1 kept" in n or "kept to join" in n for n in res.notes)
    assert not any("roads ignored" in n for n in res.notes)


def test_proposal_reports_borders_on_roads(connection: Connection, mini_county: MiniCounty) -> None:
    """The mini county's village 330421001001 is 2 x 2 micro-grids; its grids in force are the west and
    east columns. A road along the village's east-west middle line makes the proposal cut north/south:
    all of its inner border is along the road, none of the grids' in force."""
    connection.execute(sa.text("UPDATE areas SET households = 160 WHERE layer = 'micro_grid'"))
    village = "330421001001"
    assert store_roads(connection, [("测试路", LineString([(120.90, 30.835), (120.92, 30.835)]))], source="tests") == 1
    assert len(roads_within(connection, (120.90, 30.83, 120.92, 30.84))) == 1
    with_roads = proposal.propose(connection, village, Params(band=(300, 500)), author="tests")
    on_roads = with_roads["borders_on_roads"]
    assert on_roads["roads"] == 1
    assert on_roads["proposal"]["share"] >= 0.9 and on_roads["current"]["share"] <= 0.1
    assert on_roads["proposal"]["share"] > on_roads["current"]["share"]
    assert with_roads["proposal"]["units"] == 2
    without = proposal.propose(connection, village, Params(band=(300, 500), roads=False), author="tests")
    assert without["borders_on_roads"]["roads"] == 0
    assert without["params"]["roads"] is False
