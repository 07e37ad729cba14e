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
-- caches their plans: a call then costs a few index probes, ~0.3 ms, instead of re-planning the
-- bodies of SQL functions on every row.
CREATE OR REPLACE FUNCTION gridmap_assign(
    p geometry, at timestamptz,
    OUT town_code text, OUT village_code text, OUT grid_code text, OUT micro_grid_code text,
    OUT station_code text, OUT beat_code text, OUT generation_id integer, OUT assign_status text,
    OUT snap_distance_m double precision)
LANGUAGE plpgsql STABLE SET search_path = public AS $$
DECLARE
    g integer;
    tol double precision := coalesce(nullif(current_setting('gridmap.snap_tolerance_m', true), '')::double precision, 50.0);
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
