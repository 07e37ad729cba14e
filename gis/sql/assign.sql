-- Assignment inside the database: every point row gets its town, village, grid, micro-grid,
-- police station and beat from a boundary generation chosen by one rule (gis/spatial/genrule.py):
-- open work (incidents not closed or rejected, hazards not rectified, every building and address)
-- is assigned under the generation in force now; a record that has ended keeps the generation in
-- force at its time (when it ended, else when it began). The final statuses come from
-- gridmap_final_statuses(table), generated from gis/core/vocab.py by migration 0010.
--
-- The edge rule (the same in gis/assign.py): a point covered by several polygons of a layer
-- (it lies on their shared edge or vertex) goes to the one with the smallest code. Containment
-- includes the boundary (ST_Intersects), so no point on an edge falls between polygons.
--
-- Only the finest administrative layer present is searched (micro-grid, else grid, village,
-- town); coarser units come from parent codes, which publishing keeps nested. Beats are
-- searched on their own (they are an independent overlay); the station is the beat's parent.

CREATE OR REPLACE FUNCTION gridmap_generation_at(at timestamptz) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- Before the first publication (e.g. history loaded with the first boundaries) the
    -- earliest published generation applies.
    SELECT coalesce(
        (SELECT max(id) FROM generations WHERE published_at IS NOT NULL AND published_at <= coalesce(at, now())),
        (SELECT min(id) FROM generations WHERE published_at IS NOT NULL))
$$;

CREATE OR REPLACE FUNCTION gridmap_area_covering(p geometry, lyr text, g integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT code FROM areas
    WHERE layer = lyr AND gen_from <= g AND (gen_to IS NULL OR gen_to > g) AND ST_Intersects(geom, p)
    ORDER BY code LIMIT 1
$$;

-- The nearest polygon of a layer within tol metres (geodesic), ties by code; NULL when none.
CREATE OR REPLACE FUNCTION gridmap_area_nearest(p geometry, lyr text, g integer, tol double precision,
                                                OUT code text, OUT distance_m double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT a.code, ST_Distance(a.geom::geography, p::geography) AS d
    FROM areas a
    WHERE a.layer = lyr AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
      AND a.geom && ST_Expand(p, tol / 90000.0)
      AND ST_DWithin(a.geom::geography, p::geography, tol)
    ORDER BY d, a.code LIMIT 1
$$;

CREATE OR REPLACE FUNCTION gridmap_parent(lyr text, c text, g integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT parent_code FROM areas
    WHERE layer = lyr AND code = c AND gen_from <= g AND (gen_to IS NULL OR gen_to > g)
    LIMIT 1
$$;

CREATE OR REPLACE FUNCTION gridmap_snap_tolerance() RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('gridmap.snap_tolerance_m', true), '')::double precision, 50.0)
$$;

-- The queries are written inline (not through the helper functions above) so that PL/pgSQL
-- caches their plans: a call then costs a few index probes instead of re-planning the bodies of
-- SQL functions on every row.
-- Every query names its layer as a constant, so that each can read the small GiST index of that
-- layer (migration 0036: one partial index per searched layer) instead of the index of all areas,
-- where the boxes of the large polygons (county, towns, villages) overlap every point and make a
-- probe visit hundreds of entries. The common case, a point inside a micro-grid, is one statement:
-- the generation, the micro-grid, the parents of its grid and village, and the beat. The function
-- keeps generic plans: re-planning the custom plans PostgreSQL otherwise picked for the geometry
-- parameter cost a third of a call.
CREATE OR REPLACE FUNCTION gridmap_assign(
    p geometry, at timestamptz,
    OUT town_code text, OUT village_code text, OUT grid_code text, OUT micro_grid_code text,
    OUT station_code text, OUT beat_code text, OUT generation_id integer, OUT assign_status text,
    OUT snap_distance_m double precision)
LANGUAGE plpgsql STABLE
SET search_path = public
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    g integer;
    tol double precision := coalesce(nullif(current_setting('gridmap.snap_tolerance_m', true), '')::double precision, 50.0);
    chain text[] := ARRAY['micro_grid', 'grid', 'village', 'town'];
    i integer;
    pos integer;  -- position in chain of the layer that matched
    found_code text;
    near_d double precision;
    micro_parent text;
    grid_parent text;
    village_parent text;
BEGIN
    -- Before the first publication (e.g. history loaded with the first boundaries) the earliest
    -- published generation applies. Within a generation a code names one area, so a micro-grid's
    -- parent code is read from its own row, and each further parent is one probe on (layer, code).
    SELECT gen.g, m.code, m.parent_code, gp.parent_code, vp.parent_code, b.code, b.parent_code
    INTO g, found_code, micro_parent, grid_parent, village_parent, beat_code, station_code
    FROM (SELECT coalesce(
              (SELECT max(id) FROM generations WHERE published_at IS NOT NULL AND published_at <= coalesce(at, now())),
              (SELECT min(id) FROM generations WHERE published_at IS NOT NULL)) AS g) gen
    LEFT JOIN LATERAL (
        SELECT a.code, a.parent_code FROM areas a
        WHERE a.layer = 'micro_grid' AND a.gen_from <= gen.g AND (a.gen_to IS NULL OR a.gen_to > gen.g)
          AND ST_Intersects(a.geom, p)
        ORDER BY a.code LIMIT 1) m ON true
    LEFT JOIN LATERAL (
        SELECT a.parent_code FROM areas a
        WHERE a.layer = 'grid' AND a.code = m.parent_code AND a.gen_from <= gen.g
          AND (a.gen_to IS NULL OR a.gen_to > gen.g)
        LIMIT 1) gp ON true
    LEFT JOIN LATERAL (
        SELECT a.parent_code FROM areas a
        WHERE a.layer = 'village' AND a.code = gp.parent_code AND a.gen_from <= gen.g
          AND (a.gen_to IS NULL OR a.gen_to > gen.g)
        LIMIT 1) vp ON true
    LEFT JOIN LATERAL (
        SELECT a.code, a.parent_code FROM areas a
        WHERE a.layer = 'beat' AND a.gen_from <= gen.g AND (a.gen_to IS NULL OR a.gen_to > gen.g)
          AND ST_Intersects(a.geom, p)
        ORDER BY a.code LIMIT 1) b ON true;
    IF g IS NULL OR p IS NULL THEN
        beat_code := NULL;  -- no boundaries published yet: nothing to assign against
        station_code := NULL;
        RETURN;
    END IF;
    generation_id := g;
    assign_status := 'inside';
    IF found_code IS NOT NULL THEN
        micro_grid_code := found_code;
        grid_code := micro_parent;
        village_code := grid_parent;
        town_code := village_parent;
    ELSE
        -- No micro-grid covers the point: the next layers, finest first.
        SELECT a.code INTO found_code FROM areas a
        WHERE a.layer = 'grid' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g) AND ST_Intersects(a.geom, p)
        ORDER BY a.code LIMIT 1;
        pos := 2;
        IF found_code IS NULL THEN
            SELECT a.code INTO found_code FROM areas a
            WHERE a.layer = 'village' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
              AND ST_Intersects(a.geom, p)
            ORDER BY a.code LIMIT 1;
            pos := 3;
        END IF;
        IF found_code IS NULL THEN
            SELECT a.code INTO found_code FROM areas a
            WHERE a.layer = 'town' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g) AND ST_Intersects(a.geom, p)
            ORDER BY a.code LIMIT 1;
            pos := 4;
        END IF;
        IF found_code IS NULL THEN
            -- Covered by nothing: the nearest polygon within tol metres (geodesic, ties by code)
            -- of the finest layer that has rows; a layer with rows but nothing near ends the search.
            SELECT a.code, ST_Distance(a.geom::geography, p::geography) INTO found_code, near_d FROM areas a
            WHERE a.layer = 'micro_grid' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
              AND a.geom && ST_Expand(p, tol / 90000.0) AND ST_DWithin(a.geom::geography, p::geography, tol)
            ORDER BY 2, 1 LIMIT 1;
            pos := 1;
            IF found_code IS NULL AND NOT EXISTS (
                SELECT 1 FROM areas a WHERE a.layer = 'micro_grid' AND a.gen_from <= g
                                        AND (a.gen_to IS NULL OR a.gen_to > g)) THEN
                SELECT a.code, ST_Distance(a.geom::geography, p::geography) INTO found_code, near_d FROM areas a
                WHERE a.layer = 'grid' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
                  AND a.geom && ST_Expand(p, tol / 90000.0) AND ST_DWithin(a.geom::geography, p::geography, tol)
                ORDER BY 2, 1 LIMIT 1;
                pos := 2;
                IF found_code IS NULL AND NOT EXISTS (
                    SELECT 1 FROM areas a WHERE a.layer = 'grid' AND a.gen_from <= g
                                            AND (a.gen_to IS NULL OR a.gen_to > g)) THEN
                    SELECT a.code, ST_Distance(a.geom::geography, p::geography) INTO found_code, near_d FROM areas a
                    WHERE a.layer = 'village' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
                      AND a.geom && ST_Expand(p, tol / 90000.0) AND ST_DWithin(a.geom::geography, p::geography, tol)
                    ORDER BY 2, 1 LIMIT 1;
                    pos := 3;
                    IF found_code IS NULL AND NOT EXISTS (
                        SELECT 1 FROM areas a WHERE a.layer = 'village' AND a.gen_from <= g
                                                AND (a.gen_to IS NULL OR a.gen_to > g)) THEN
                        SELECT a.code, ST_Distance(a.geom::geography, p::geography) INTO found_code, near_d
                        FROM areas a
                        WHERE a.layer = 'town' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
                          AND a.geom && ST_Expand(p, tol / 90000.0)
                          AND ST_DWithin(a.geom::geography, p::geography, tol)
                        ORDER BY 2, 1 LIMIT 1;
                        pos := 4;
                    END IF;
                END IF;
            END IF;
            IF found_code IS NULL THEN
                assign_status := 'outside_jurisdiction';
                beat_code := NULL;  -- outside: no beat either
                station_code := NULL;
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
    END IF;

    IF beat_code IS NULL THEN
        SELECT a.code, a.parent_code INTO beat_code, station_code FROM areas a
        WHERE a.layer = 'beat' AND a.gen_from <= g AND (a.gen_to IS NULL OR a.gen_to > g)
          AND a.geom && ST_Expand(p, tol / 90000.0) AND ST_DWithin(a.geom::geography, p::geography, tol)
        ORDER BY ST_Distance(a.geom::geography, p::geography), a.code LIMIT 1;
    END IF;
END
$$;

-- Row triggers: a plain INSERT by any system is assigned. The bulk loader assigns in process
-- (same rule) and sets gridmap.bulk = 'on' for its transaction so the trigger stays out of its way.
-- The time columns are those of gis.spatial.genrule.LIFECYCLES. A status change alone does not
-- fire the trigger (it is on INSERT and UPDATE OF geom), so an incident that closes keeps the
-- assignment it had while open: the generation in force when it closed.
--
-- county_code (migration 0032): the county of the row, the first six digits of its town code (or
-- of its police station's, for a point only a beat covers). A row outside every county keeps the
-- county it already had (the writer's, or the one it was in before it moved), else the home
-- county (gridmap_home_county(), the first of the configured counties), so it is never NULL and
-- county-partitioned storage always has a partition for it.
--
-- The trigger functions pin search_path: on a postgres_fdw shard the remote session runs with
-- search_path = pg_catalog, where neither the tables nor PostGIS would be found.
CREATE OR REPLACE FUNCTION gridmap_assign_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    a record;
    at timestamptz := now();
BEGIN
    IF TG_TABLE_NAME = 'incidents' THEN
        IF NEW.status = ANY (gridmap_final_statuses('incidents')) THEN
            at := coalesce(NEW.closed_at, NEW.reported_at);
        END IF;
    ELSIF TG_TABLE_NAME = 'hazards' THEN
        IF NEW.status = ANY (gridmap_final_statuses('hazards')) THEN
            at := coalesce(NEW.rectified_at, NEW.found_at);
        END IF;
    END IF;
    a := gridmap_assign(NEW.geom, at);
    NEW.town_code := a.town_code;
    NEW.village_code := a.village_code;
    NEW.grid_code := a.grid_code;
    NEW.micro_grid_code := a.micro_grid_code;
    NEW.station_code := a.station_code;
    NEW.beat_code := a.beat_code;
    NEW.generation_id := a.generation_id;
    NEW.assign_status := a.assign_status;
    NEW.snap_distance_m := a.snap_distance_m;
    NEW.county_code := coalesce(left(a.town_code, 6), left(a.station_code, 6), NEW.county_code, gridmap_home_county());
    RETURN NEW;
END
$$;

-- Writers that change the assignment without moving the point (reassignment after a publish)
-- set the unit columns directly; this keeps county_code in step with them (trigger of 0032).
CREATE OR REPLACE FUNCTION gridmap_county_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    NEW.county_code := coalesce(left(NEW.town_code, 6), left(NEW.station_code, 6), NEW.county_code,
                                gridmap_home_county());
    RETURN NEW;
END
$$;
