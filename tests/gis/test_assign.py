"""The edge rule, snapping and agreement between the trigger (SQL) and the in-process assigner."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from gis.spatial.assign import Assigner, assign_points

# Coordinates of the mini county (see tests/conftest.py).
X0, X1, Y0, Y1, XM, YM = 120.90, 120.94, 30.83, 30.85, 120.92, 30.84
GX = (X0 + XM) / 2  # edge between the two grids of town 1
MY = (Y0 + YM) / 2  # edge between the micro-grids of village 1


def _insert_hazard(conn, lon: float, lat: float) -> dict:  # type: ignore[no-untyped-def]
    return dict(
        conn.execute(
            sa.text(
                "INSERT INTO hazards (category, severity, status, found_at, geom) "
                "VALUES ('gas', 'low', 'open', now(), ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
                "RETURNING town_code, village_code, grid_code, micro_grid_code, station_code, beat_code, "
                "generation_id, assign_status, snap_distance_m"
            ),
            {"x": lon, "y": lat},
        )
        .one()
        ._mapping
    )


CASES = {
    # inside the south-west micro-grid of town 1
    "interior": (120.905, 30.832),
    # on the edge between town 1 and town 2 (XM): the smaller code (town 1) wins
    "town_edge": (XM, 30.833),
    # on the edge between the two grids of a village
    "grid_edge": (GX, 30.832),
    # on the edge between two micro-grids
    "micro_edge": (120.905, MY),
    # on a vertex shared by four micro-grids of different villages and towns
    "four_corner": (XM, YM),
    # on the county outline itself
    "outline": (X0, 30.838),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_trigger_and_in_process_agree_on_edges_and_vertices(connection, mini_county, case: str) -> None:  # type: ignore[no-untyped-def]
    lon, lat = CASES[case]
    sql = _insert_hazard(connection, lon, lat)
    mem = assign_points(connection, [lon], [lat]).row(0)
    assert sql["assign_status"] == "inside"
    for column in ("town_code", "village_code", "grid_code", "micro_grid_code", "station_code", "beat_code"):
        assert sql[column] == mem[column], column
    assert sql["generation_id"] == mem["generation_id"] == mini_county.generation


def test_edge_rule_picks_the_smallest_code(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    row = _insert_hazard(connection, XM, YM)
    # The four micro-grids meeting at (XM, YM) belong to towns 1 and 2, villages 1 and 2.
    assert row["micro_grid_code"] == "33042100100100202"
    assert row["grid_code"] == "330421001001002"
    assert row["village_code"] == "330421001001"
    assert row["town_code"] == "330421001"
    assert row["beat_code"] == "330421P0102"  # beat 2 spans 120.913..120.927
    assert row["station_code"] == "330421P01"


def test_edge_rule_does_not_depend_on_row_order(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    lon = np.array([c[0] for c in CASES.values()])
    lat = np.array([c[1] for c in CASES.values()])
    forward = assign_points(connection, lon, lat).frame()
    backward = assign_points(connection, lon[::-1], lat[::-1]).frame().iloc[::-1].reset_index(drop=True)
    assert forward.equals(backward)


def test_point_just_outside_snaps_within_tolerance(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    # ~20 m west of the county's western edge
    lon = X0 - 20 / 95_500
    sql = _insert_hazard(connection, lon, 30.832)
    mem = assign_points(connection, [lon], [30.832]).row(0)
    assert sql["assign_status"] == mem["assign_status"] == "snapped"
    assert sql["micro_grid_code"] == mem["micro_grid_code"] == "33042100100100101"
    assert sql["snap_distance_m"] == pytest.approx(20, abs=1.5)
    assert mem["snap_distance_m"] == pytest.approx(sql["snap_distance_m"], abs=0.05)
    assert sql["beat_code"] == mem["beat_code"] == "330421P0101"


def test_point_far_outside_is_kept_and_flagged(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    sql = _insert_hazard(connection, 121.3, 31.2)
    mem = assign_points(connection, [121.3], [31.2]).row(0)
    assert sql["assign_status"] == mem["assign_status"] == "outside_jurisdiction"
    assert sql["grid_code"] is None and mem["grid_code"] is None
    assert (
        connection.execute(
            sa.text("SELECT count(*) FROM hazards WHERE assign_status = 'outside_jurisdiction'")
        ).scalar()
        == 1
    )


def test_snap_tolerance_is_configurable_in_the_database(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    connection.execute(sa.text("SET LOCAL gridmap.snap_tolerance_m = '10'"))
    lon = X0 - 20 / 95_500
    assert _insert_hazard(connection, lon, 30.832)["assign_status"] == "outside_jurisdiction"
    assigner = Assigner.from_db(connection, mini_county.generation, snap_tolerance_m=10)
    assert assigner.assign([lon], [30.832]).row(0)["assign_status"] == "outside_jurisdiction"


def test_random_points_agree_between_sql_and_in_process(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    lon = rng.uniform(X0 - 0.001, X1 + 0.001, 300)
    lat = rng.uniform(Y0 - 0.001, Y1 + 0.001, 300)
    # put a third of them exactly on grid lines
    lon[:50] = rng.choice([X0, GX, XM, X1], 50)
    lat[50:100] = rng.choice([Y0, MY, YM, Y1], 50)
    rows = connection.execute(
        sa.text(
            "SELECT (a).* FROM (SELECT gridmap_assign(ST_SetSRID(ST_MakePoint(x, y), 4326), now()) AS a, i "
            "FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, i)) s ORDER BY i"
        ),
        {"xs": lon.tolist(), "ys": lat.tolist()},
    ).all()
    mem = assign_points(connection, lon, lat)
    for i, row in enumerate(rows):
        got = mem.row(i)
        for column in ("micro_grid_code", "grid_code", "village_code", "town_code", "beat_code", "assign_status"):
            assert row._mapping[column] == got[column], (i, lon[i], lat[i], column)


# Rows of each table with a lifecycle, as (status, begins, ends): which generation the trigger
# picks must be the one the in-process rule (bulk import, verify) picks.
RULE_CASES = {
    "incidents": [
        ("reported", "2024-06-01", None),  # open, back-dated: generation in force now
        ("in_progress", "2019-06-01", None),  # open, before any publication
        ("closed", "2024-06-01", "2024-06-02"),  # ended before the redraw
        ("closed", "2024-06-01", "2025-02-01"),  # ended after it
        ("rejected", "2024-06-01", None),  # ended, end unknown: its reported time
    ],
    "hazards": [
        ("open", "2024-06-01", None),
        ("overdue", "2024-06-01", None),
        ("rectified", "2024-06-01", None),
        ("rectified", "2024-06-01", "2025-03-01"),
    ],
}
TIME_COLUMNS = {"incidents": ("reported_at", "closed_at"), "hazards": ("found_at", "rectified_at")}


def test_trigger_and_in_process_pick_the_same_generation(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    import pandas as pd

    from boundaries.generations import publish_layers
    from gis.spatial.genrule import generations_for_rows

    # A redraw in force from 2025: the west grid of village 1 absorbs the east one.
    grids = mini_county.grids.copy()
    west, east = "330421001001001", "330421001001002"
    merged = grids.loc[grids["code"].isin([west, east])].geometry.union_all()
    grids = grids[grids["code"] != east]
    grids.loc[grids["code"] == west, "geometry"] = merged
    micro = mini_county.micro_grids.copy()
    micro.loc[micro["parent_code"] == east, "parent_code"] = west
    redraw = publish_layers(
        connection,
        {"grid": grids, "micro_grid": micro},
        note="merge",
        author="tests",
        published_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    lon, lat = 120.915, 30.833  # in the absorbed grid
    for table, cases in RULE_CASES.items():
        begins, ends = TIME_COLUMNS[table]
        frame = pd.DataFrame(cases, columns=["status", begins, ends])
        stored = []
        for status, start, end in cases:
            fixed = "category, source" if table == "incidents" else "category, severity"
            values = "'dispute', 'other'" if table == "incidents" else "'gas', 'low'"
            stored.append(
                connection.execute(
                    sa.text(
                        f"INSERT INTO {table} ({fixed}, status, {begins}, {ends}, geom) "
                        f"VALUES ({values}, :s, :b, :e, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
                        "RETURNING generation_id, grid_code"
                    ),
                    {"s": status, "b": start, "e": end, "x": lon, "y": lat},
                ).one()
            )
        gens = generations_for_rows(connection, table, frame)
        assert [r.generation_id for r in stored] == gens.tolist(), table
        for r, g in zip(stored, gens.tolist(), strict=True):
            assert r.grid_code == Assigner.from_db(connection, g).assign([lon], [lat]).row(0)["grid_code"]
        old, new = mini_county.generation, redraw
        expected = {
            "incidents": [new, new, old, new, old],
            "hazards": [new, new, old, new],
        }[table]
        assert gens.tolist() == expected, table
