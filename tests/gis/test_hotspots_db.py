"""Hot spots, emerging hot spots and repeat locations on a database: a 10 x 10 lattice of grids
published over the mini county, incidents planted in a known block."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import esda
import geopandas as gpd
import numpy as np
import pytest
import sqlalchemy as sa
from shapely.geometry import box
from sqlalchemy.engine import Connection

from boundaries.generations import publish_layers
from boundaries.sample import X0, X1, Y0, Y1, MiniCounty
from gis.analysis.emerging import emerging
from gis.analysis.hotspots import hotspots
from gis.analysis.repeats import repeat_locations
from gis.analysis.units import AnalysisError, load_units
from gis.core.vocab import COUNTY_TZ
from gis.incidents.filter import IncidentFilter
from gis.people.scope import Scope

SIDE = 10
WEST, EAST = "330421001001", "330421002001"  # mini-county villages: the lattice's west and east halves
BLOCK = [(r, c) for r in range(2, 5) for c in range(2, 5)]  # the planted 3 x 3 block (rows, columns)
WEEK = dt.date(2026, 11, 16)  # a Monday


def cell_code(row: int, col: int) -> str:
    village = WEST if col < SIDE // 2 else EAST
    return f"{village}{row * SIDE + col:03d}"


def cell_centre(row: int, col: int) -> tuple[float, float]:
    dx, dy = (X1 - X0) / SIDE, (Y1 - Y0) / SIDE
    return X0 + (col + 0.5) * dx, Y0 + (row + 0.5) * dy


def publish_lattice(connection: Connection, mini_county: MiniCounty) -> int:
    """Replace the mini county's grids by a 10 x 10 lattice (100 households each)."""
    dx, dy = (X1 - X0) / SIDE, (Y1 - Y0) / SIDE
    rows = [
        {
            "code": cell_code(r, c),
            "name": f"格{r}-{c}",
            "parent_code": WEST if c < SIDE // 2 else EAST,
            "households": 100,
            "geometry": box(X0 + c * dx, Y0 + r * dy, X0 + (c + 1) * dx, Y0 + (r + 1) * dy),
        }
        for r in range(SIDE)
        for c in range(SIDE)
    ]
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    # One micro-grid per cell: incidents are assigned through the micro-grid (gis/sql/assign.sql).
    micro = [{**row, "code": f"{row['code']}01", "parent_code": row["code"]} for row in rows]
    micros = gpd.GeoDataFrame(micro, geometry="geometry", crs="EPSG:4326")
    when = dt.datetime(2020, 1, 2, tzinfo=dt.UTC)
    layers = {"grid": grids, "micro_grid": micros}
    return publish_layers(connection, layers, note="lattice", author="tests", published_at=when)


def add_incidents(
    connection: Connection,
    cells: Sequence[tuple[int, int]],
    when: dt.datetime,
    *,
    category: str = "dispute",
    at: tuple[float, float] | None = None,
) -> None:
    """One incident per entry of ``cells`` (repeat a cell for more) at the cell's centre or ``at``;
    the insert trigger assigns it to its grid."""
    params = []
    for i, (r, c) in enumerate(cells):
        lon, lat = at or cell_centre(r, c)
        params.append(
            {
                "cat": category,
                "at": when + dt.timedelta(minutes=i),
                "lon": lon,
                "lat": lat,
            }
        )
    connection.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, status, geom) "
            "VALUES (:cat, 'grid_patrol', :at, 'reported', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
        ),
        params,
    )


def plant_week(connection: Connection, monday: dt.date, *, block_each: int = 12, seed: int = 0) -> None:
    """Background of 0-2 incidents per cell and ``block_each`` in each cell of the block."""
    rng = np.random.default_rng(seed)
    when = dt.datetime.combine(monday, dt.time(10), COUNTY_TZ)
    cells = []
    for r in range(SIDE):
        for c in range(SIDE):
            n = block_each if (r, c) in BLOCK else int(rng.integers(0, 3))
            cells += [(r, c)] * n
    add_incidents(connection, cells, when)


@pytest.fixture
def lattice(connection: Connection, mini_county: MiniCounty) -> int:
    return publish_lattice(connection, mini_county)


def test_planted_block_is_hot_on_the_database(connection: Connection, lattice: int) -> None:
    plant_week(connection, WEEK)
    result = hotspots(connection, "grid", IncidentFilter(), period="week", day=WEEK)
    assert result["generation"] == lattice and result["units"] == SIDE * SIDE
    by_code = {row["code"]: row for row in result["rows"]}
    assert by_code[cell_code(3, 3)]["class"] == "hot_99"
    assert by_code[cell_code(3, 3)]["count"] == 12 and by_code[cell_code(3, 3)]["rate"] == 12.0
    far = [cell_code(r, c) for r in range(SIDE) for c in range(SIDE) if r > 5 or c > 5]
    assert all(not by_code[code]["class"].startswith("hot") for code in far)
    # The same answer as esda on the same counts and weights.
    units = load_units(connection, "grid")
    counts = np.array([by_code[code]["count"] for code in units.codes], dtype=float)
    ref = esda.G_Local(counts, units.w, transform="B", star=True, permutations=9999, seed=20240501)
    np.testing.assert_allclose([by_code[c]["gi_z"] for c in units.codes], np.round(ref.Zs, 4))
    # Another week (no incidents at all) has no hot spot.
    quiet = hotspots(connection, "grid", IncidentFilter(), day=WEEK + dt.timedelta(days=7))
    assert quiet["incidents"] == 0 and quiet["classes"]["not_significant"] == SIDE * SIDE


def test_filter_and_scope(connection: Connection, lattice: int) -> None:
    plant_week(connection, WEEK)
    fires = hotspots(connection, "grid", IncidentFilter(category=("fire",)), day=WEEK)
    assert fires["incidents"] == 0
    scoped = hotspots(connection, "grid", IncidentFilter(scope=Scope.parse(WEST)), day=WEEK)
    whole = hotspots(connection, "grid", IncidentFilter(), day=WEEK)
    assert {r["code"][:12] for r in scoped["rows"]} == {WEST} and len(scoped["rows"]) == SIDE * SIDE // 2
    # Computed county-wide: a scoped caller sees the same figures for its own units.
    whole_rows = {r["code"]: r for r in whole["rows"]}
    assert all(r == whole_rows[r["code"]] for r in scoped["rows"])
    with pytest.raises(AnalysisError) as err:
        hotspots(connection, "grid", IncidentFilter(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)), day=WEEK)
    assert err.value.field == "start"


def test_emerging_new_and_persistent(connection: Connection, lattice: int) -> None:
    weeks = 4
    first = WEEK - dt.timedelta(days=7 * (weeks - 1))
    for k in range(weeks):
        plant_week(connection, first + dt.timedelta(days=7 * k), seed=k)
    # A second block, only in the last week.
    late = [(r, c) for r in range(6, 9) for c in range(6, 9)]
    add_incidents(
        connection, [cell for cell in late for _ in range(12)], dt.datetime.combine(WEEK, dt.time(9), COUNTY_TZ)
    )
    result = emerging(connection, "grid", IncidentFilter(), day=WEEK, weeks=weeks)
    by_code = {row["code"]: row for row in result["rows"]}
    assert by_code[cell_code(7, 7)]["class"] == "new"
    assert by_code[cell_code(3, 3)]["class"] in ("persistent", "intensifying", "diminishing")
    assert by_code[cell_code(3, 3)]["hot_weeks"] == weeks
    assert by_code[cell_code(0, 9)]["class"] in ("none", "sporadic")
    assert len(by_code[cell_code(3, 3)]["counts"]) == weeks


def test_repeats_threshold(connection: Connection, lattice: int) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO buildings (code, geom) VALUES ('TESTB1', ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326));"
            "INSERT INTO addresses (full_text, normalized, precision, building_id, geom) "
            "SELECT '测试路1号', '测试路1号', 'house', id, ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326) "
            "FROM buildings WHERE code = 'TESTB1'"
        )
    )
    end = dt.datetime(2026, 11, 30, tzinfo=COUNTY_TZ)
    near = (120.90510, 30.83505)  # ~10 m from the address
    add_incidents(connection, [(0, 0)] * 2, end - dt.timedelta(days=5), at=near)
    assert repeat_locations(connection, IncidentFilter(end=end))["locations"] == []
    add_incidents(connection, [(0, 0)], end - dt.timedelta(days=20), at=near)
    add_incidents(connection, [(0, 0)] * 3, end - dt.timedelta(days=40), at=near)  # outside 30 days
    found = repeat_locations(connection, IncidentFilter(end=end))["locations"]
    kinds = {loc["kind"]: loc for loc in found}
    assert set(kinds) == {"address", "building"}
    assert kinds["address"]["count"] == 3 and kinds["address"]["label"] == "测试路1号"
    assert kinds["building"]["building_code"] == "TESTB1"
    # Far from every address: grouped by position.
    add_incidents(connection, [(9, 9)] * 3, end - dt.timedelta(days=2))
    positions = repeat_locations(connection, IncidentFilter(end=end), kinds=("position",))["locations"]
    assert [loc["count"] for loc in positions] == [3]
    assert repeat_locations(connection, IncidentFilter(end=end), min_count=4)["locations"] == []
    with pytest.raises(AnalysisError) as err:
        repeat_locations(connection, IncidentFilter(end=end), radius_m=0)
    assert err.value.field == "radius_m"


def test_emerging_refuses_more_draws_than_its_budget(
    connection: Connection, lattice: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gis.analysis.emerging as module

    monkeypatch.setattr(module, "MAX_DRAWS", 8 * 999 * SIDE * SIDE)
    with pytest.raises(AnalysisError) as err:
        emerging(connection, "grid", IncidentFilter(), day=WEEK, weeks=9, permutations=999)
    assert err.value.field == "permutations" and "p_value=analytic" in err.value.message
    # The analytic p-value draws nothing.
    assert emerging(connection, "grid", IncidentFilter(), day=WEEK, weeks=9, p_value="analytic")["weeks"] == 9


def test_police_scope_sees_no_grid(connection: Connection, lattice: int) -> None:
    plant_week(connection, WEEK)
    result = hotspots(connection, "grid", IncidentFilter(scope=Scope.parse("330421P01")), day=WEEK)
    assert result["rows"] == [] and result["units"] == SIDE * SIDE


def test_repeats_radius_matches_the_geodesic_distance(connection: Connection, lattice: int) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO addresses (full_text, normalized, precision, geom) "
            "VALUES ('测试路2号', '测试路2号', 'house', ST_SetSRID(ST_MakePoint(120.915, 30.845), 4326))"
        )
    )
    end = dt.datetime(2026, 11, 30, tzinfo=COUNTY_TZ)
    at = (120.915 + 28 / 95_663, 30.845)  # ~28 m east
    add_incidents(connection, [(0, 0)] * 3, end - dt.timedelta(days=1), at=at)
    geodesic = connection.execute(
        sa.text(
            "SELECT ST_Distance(ST_SetSRID(ST_MakePoint(120.915, 30.845), 4326)::geography, "
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)"
        ),
        {"lon": at[0], "lat": at[1]},
    ).scalar_one()
    assert 27.5 < geodesic < 28.5
    flt = IncidentFilter(end=end)
    found = repeat_locations(connection, flt, radius_m=geodesic + 0.3, kinds=("address",))["locations"]
    assert [loc["label"] for loc in found] == ["测试路2号"]
    assert repeat_locations(connection, flt, radius_m=geodesic - 0.3, kinds=("address",))["locations"] == []
