"""gridmap_assign with one spatial index per layer (migration 0036) gives the results of the body
it replaced: the same units, status, generation and snap distance for points inside, on edges and
vertices, snapped, outside, under a past generation, with another tolerance, and where a layer has
a gap (a point covered by a grid but by no micro-grid) or no rows at all."""

from __future__ import annotations

import datetime as dt

import numpy as np
import sqlalchemy as sa

from boundaries.generations import publish_layers
from boundaries.sample import X0, X1, XM, Y0, Y1, YM

# The body before migration 0036 (gis/sql/assign.sql at revision 0030), as the reference: it read
# the index of all areas with the layer as a variable.
REFERENCE = """
CREATE FUNCTION pg_temp.gridmap_assign_reference(
    p geometry, at timestamptz,
    OUT town_code text, OUT village_code text, OUT grid_code text, OUT micro_grid_code text,
    OUT station_code text, OUT beat_code text, OUT generation_id integer, OUT assign_status text,
    OUT snap_distance_m double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    g integer;
    tol double precision := coalesce(nullif(current_setting('gridmap.snap_tolerance_m', true), '')::double precision,
                                     50.0);
    chain text[] := ARRAY['micro_grid', 'grid', 'village', 'town'];
    lyr text;
    i integer;
    pos integer;  -- position in chain of the layer that matched (a FOR variable is loop-local)
    found_code text;
    near_d double precision;
BEGIN
    SELECT max(id) INTO g FROM generations WHERE published_at IS NOT NULL AND published_at <= coalesce(at, now());
    IF g IS NULL THEN
        SELECT min(id) INTO g FROM generations WHERE published_at IS NOT NULL;
    END IF;
    IF g IS NULL OR p IS NULL THEN
        RETURN;  -- no boundaries published yet: nothing to assign against
    END IF;
    generation_id := g;
    assign_status := 'inside';
    FOR i IN 1..4 LOOP
        lyr := chain[i];
        SELECT a.code INTO found_code FROM areas a
        WHERE a.layer = lyr AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g) AND ST_Intersects(a.geom, p)
        ORDER BY a.code LIMIT 1;
        pos := i;
        EXIT WHEN found_code IS NOT NULL;
    END LOOP;
    IF found_code IS NULL THEN
        FOR i IN 1..4 LOOP
            lyr := chain[i];
            SELECT a.code, ST_Distance(a.geom::geography, p::geography) INTO found_code, near_d FROM areas a
            WHERE a.layer = lyr AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
              AND a.geom && ST_Expand(p, tol / 90000.0) AND ST_DWithin(a.geom::geography, p::geography, tol)
            ORDER BY 2, 1 LIMIT 1;
            pos := i;
            EXIT WHEN found_code IS NOT NULL;
            -- a layer with rows but nothing near: stop here rather than try a coarser layer
            EXIT WHEN EXISTS (SELECT 1 FROM areas a WHERE a.layer = lyr AND a.gen_from <= g
                                                     AND (a.gen_to IS NULL OR a.gen_to > g));
        END LOOP;
        IF found_code IS NULL THEN
            assign_status := 'outside_jurisdiction';
            RETURN;
        END IF;
        assign_status := 'snapped';
        snap_distance_m := near_d;
    END IF;
    -- Walk up from the layer that matched; each step is one index probe on (layer, code).
    FOR i IN pos..4 LOOP
        CASE chain[i]
            WHEN 'micro_grid' THEN micro_grid_code := found_code;
            WHEN 'grid' THEN grid_code := found_code;
            WHEN 'village' THEN village_code := found_code;
            ELSE town_code := found_code;
        END CASE;
        EXIT WHEN i = 4 OR found_code IS NULL;
        SELECT a.parent_code INTO found_code FROM areas a
        WHERE a.layer = chain[i] AND a.code = found_code AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
        LIMIT 1;
    END LOOP;

    SELECT a.code, a.parent_code INTO beat_code, station_code FROM areas a
    WHERE a.layer = 'beat' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g) AND ST_Intersects(a.geom, p)
    ORDER BY a.code LIMIT 1;
    IF beat_code IS NULL THEN
        SELECT a.code, a.parent_code INTO beat_code, station_code FROM areas a
        WHERE a.layer = 'beat' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
          AND a.geom && ST_Expand(p, tol / 90000.0) AND ST_DWithin(a.geom::geography, p::geography, tol)
        ORDER BY ST_Distance(a.geom::geography, p::geography), a.code LIMIT 1;
    END IF;
END
$$;
"""
OUT = (
    "town_code, village_code, grid_code, micro_grid_code, station_code, beat_code, generation_id, "
    "assign_status, round(CAST(snap_distance_m AS numeric), 6) AS snap"
)
LAYERS = ("micro_grid", "grid", "village", "town", "beat")


def _points() -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(36)
    margin = 0.002  # ~200 m: beyond the default 50 m tolerance, so some points are outside
    lon = rng.uniform(X0 - margin, X1 + margin, 400)
    lat = rng.uniform(Y0 - margin, Y1 + margin, 400)
    gx = (X0 + XM) / 2
    my = (Y0 + YM) / 2
    lon[:80] = rng.choice([X0, gx, XM, X1], 80)  # on vertical edges
    lat[80:160] = rng.choice([Y0, my, YM, Y1], 80)  # on horizontal edges
    lon[160:200] = X0 - rng.uniform(0, 0.0008, 40)  # just west of the county: snapped or outside
    return lon.tolist(), lat.tolist()


def _compare(conn: sa.Connection, at: dt.datetime) -> int:
    """Rows where the function and the reference differ (0 expected), after checking both ran."""
    lon, lat = _points()
    rows = conn.execute(
        sa.text(
            f"SELECT n.*, r.* FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) AS t(x, y), "
            f"LATERAL (SELECT {OUT} FROM gridmap_assign(ST_SetSRID(ST_MakePoint(x, y), 4326), :at)) n, "
            f"LATERAL (SELECT {OUT} FROM pg_temp.gridmap_assign_reference(ST_SetSRID(ST_MakePoint(x, y), 4326), :at)) r"
        ),
        {"xs": lon, "ys": lat, "at": at},
    ).all()
    assert len(rows) == len(lon)
    half = len(rows[0]) // 2
    return sum(1 for row in rows if tuple(row[:half]) != tuple(row[half:]))


def test_assign_gives_the_results_of_the_previous_body(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    connection.execute(sa.text(REFERENCE))
    now = dt.datetime.now(dt.UTC)
    statuses = connection.execute(
        sa.text(
            "SELECT DISTINCT (gridmap_assign(ST_SetSRID(ST_MakePoint(x, y), 4326), now())).assign_status "
            "FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) AS t(x, y)"
        ),
        dict(zip(("xs", "ys"), _points(), strict=True)),
    ).scalars()
    assert set(statuses) == {"inside", "snapped", "outside_jurisdiction"}  # every path is exercised
    assert _compare(connection, now) == 0
    assert _compare(connection, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == 0  # before any publication
    connection.execute(sa.text("SET LOCAL gridmap.snap_tolerance_m = '150'"))
    assert _compare(connection, now) == 0


def test_assign_falls_back_through_the_coarser_layers_as_before(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    connection.execute(sa.text(REFERENCE))
    # A generation with a gap in the micro-grids (the south-west one is gone): points there are
    # found in their grid, and the walk up starts from the grid.
    micro = mini_county.micro_grids
    publish_layers(connection, {"micro_grid": micro.iloc[1:]}, note="gap", author="tests")
    gap = connection.execute(
        sa.text(
            "SELECT grid_code, micro_grid_code "
            "FROM gridmap_assign(ST_SetSRID(ST_MakePoint(120.901, 30.831), 4326), now())"
        )
    ).one()
    assert gap.micro_grid_code is None and gap.grid_code == micro.iloc[0]["parent_code"]
    assert _compare(connection, dt.datetime.now(dt.UTC)) == 0
    # A generation without micro-grids at all: snapping searches the grids.
    publish_layers(connection, {"micro_grid": micro.iloc[0:0]}, note="no micro-grids", author="tests")
    assert _compare(connection, dt.datetime.now(dt.UTC)) == 0


def test_every_searched_layer_has_its_spatial_index(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    found = dict(
        connection.execute(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'areas' AND indexname LIKE 'ix_areas_geom_%'"
            )
        ).all()
    )
    assert sorted(found) == sorted(f"ix_areas_geom_{layer}" for layer in LAYERS)
    for layer in LAYERS:
        assert "gist (geom)" in found[f"ix_areas_geom_{layer}"] and f"'{layer}'" in found[f"ix_areas_geom_{layer}"]
    # The micro-grid probe of a point reads its layer's index (the planner would seq-scan the mini
    # county's few rows, so sequential scans are ruled out to see which index it would pick).
    connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        connection.execute(
            sa.text(
                "EXPLAIN SELECT a.code FROM areas a WHERE a.layer = 'micro_grid' AND a.gen_from <= 1 "
                "AND (a.gen_to IS NULL OR a.gen_to > 1) "
                "AND ST_Intersects(a.geom, ST_SetSRID(ST_MakePoint(120.905, 30.832), 4326)) ORDER BY a.code LIMIT 1"
            )
        ).scalars()
    )
    assert "ix_areas_geom_micro_grid" in plan
