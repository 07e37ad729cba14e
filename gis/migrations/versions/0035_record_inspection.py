"""``gridmap_record_inspection``: an inspection with all it implies in one function call.

``POST /buildings/{id}/inspections`` took four round trips (BEGIN, the lock, the write, COMMIT)
plus some per earlier hazard, and its one long statement cost the driver more to convert than the
database to run. This function (called once, under autocommit, by gis.fieldwork.inspectfast)
does what gis.fieldwork.inspections.record writes, after the values were checked in Python:

* locks the building inside the caller's scope (``p_whole`` or a code of a layer), checks that
  the checklist version the caller resolved is still the one the body names, that every posting
  was held that day and that no earlier hazard is in a status a re-inspection cannot start from;
  when any check fails it returns ``o_ok`` NULL having written nothing (the caller then leaves the
  request to ``record``, which answers the error);
* inserts the inspection (``o_id`` NULL for a stored client id: a resend) with its team, results,
  the building's risk and next date (if it is the latest inspection) and the audit entry;
* re-inspects the building's earlier unrectified hazards of the non-na items as
  gis.fieldwork.hazards.apply does (pass: rectified; fail: rectifying until ``p_rdeadlines``,
  with a new deadline job), each with its event and audit entry;
* opens a hazard (event, deadline job) for each failed item no earlier hazard covers.

Each statement after the building's lock reads a new snapshot (a plpgsql function's statements
do, under read committed), so an inspection of the same building committed while this one waited
for the lock is seen: its new hazards are re-inspected, not opened a second time.

Revision ID: 0035
Revises: 0030
"""

from __future__ import annotations

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

_ARGS = """p_building bigint, p_whole boolean, p_towns text[], p_villages text[], p_grids text[],
    p_micro_grids text[], p_stations text[], p_beats text[], p_kind text, p_version integer, p_checklist integer,
    p_postings bigint[], p_day date, p_at timestamptz, p_room text, p_lon float8, p_lat float8, p_notes text,
    p_outcome text, p_risk text, p_failed integer, p_actor text, p_client_id text, p_codes text[],
    p_results text[], p_notes_each text[], p_rcodes text[], p_rresults text[], p_rdeadlines timestamptz[],
    p_categories text[], p_severities text[], p_descriptions text[], p_deadlines timestamptz[],
    p_parties text[], p_open_codes text[]"""

# The hazard deadline job (gis.fieldwork.overdue.HAZARD_TASK on gis.work.jobs.DEADLINE_QUEUE) and
# the county's zone (gis.core.vocab.COUNTY_TZ_NAME) are written out: a migration keeps its values.
_FUNCTION = """
CREATE FUNCTION gridmap_record_inspection(ARGS,
    OUT o_ok boolean, OUT o_checklist integer, OUT o_id bigint, OUT o_next_inspection_on date,
    OUT o_opened bigint[], OUT o_rectified bigint[], OUT o_reopened bigint[])
LANGUAGE plpgsql AS $fn$
DECLARE
    v_point geometry := ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326);
    v_held bigint;
    v_bad bigint;
    v_earlier bigint;
BEGIN
    -- One inspection of a building at a time settles its risk and its hazards: the building is
    -- locked first, and every later statement reads what was committed before the lock was had.
    SELECT (SELECT c.id FROM checklists c
            WHERE c.kind = p_kind AND (p_version IS NULL OR c.version = p_version)
            ORDER BY c.version DESC LIMIT 1)
    INTO o_checklist
    FROM buildings b
    WHERE b.id = p_building
      AND (p_whole OR b.town_code = ANY(p_towns) OR b.village_code = ANY(p_villages) OR b.grid_code = ANY(p_grids)
           OR b.micro_grid_code = ANY(p_micro_grids) OR b.station_code = ANY(p_stations)
           OR b.beat_code = ANY(p_beats))
    FOR UPDATE OF b;
    IF NOT FOUND OR o_checklist IS DISTINCT FROM p_checklist THEN
        RETURN;
    END IF;
    -- The postings held that day, and the earlier unrectified hazards of the checked items (those
    -- in a status a re-inspection cannot start from, and all of them).
    SELECT (SELECT count(*) FROM postings p
            WHERE p.id = ANY(p_postings) AND p.starts_on <= p_day AND (p.ends_on IS NULL OR p.ends_on >= p_day)),
           count(*) FILTER (WHERE h.status NOT IN ('open', 'notified', 'rectifying', 'submitted', 'overdue')),
           count(*)
    INTO v_held, v_bad, v_earlier
    FROM hazards h
    WHERE h.building_id = p_building AND h.status <> 'rectified' AND h.item_code = ANY(p_rcodes) AND h.found_at < p_at;
    IF v_held <> cardinality(p_postings) OR v_bad > 0 THEN
        RETURN;
    END IF;
    o_ok := true;

    WITH i AS (
        INSERT INTO inspections (building_id, room, checklist_id, at, geom, notes, outcome, risk_level,
                                 failed_items, actor, client_id)
        VALUES (p_building, p_room, p_checklist, p_at, v_point, p_notes, p_outcome, p_risk, p_failed, p_actor,
                p_client_id)
        ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id),
    t AS (
        INSERT INTO inspection_inspectors (inspection_id, posting_id) SELECT i.id, p FROM i, unnest(p_postings) p),
    r AS (
        INSERT INTO inspection_results (inspection_id, item_code, result, note)
        SELECT i.id, u.code, u.result, u.note
        FROM i, unnest(p_codes, p_results, p_notes_each) AS u(code, result, note)),
    a AS (
        INSERT INTO audit_log (actor, action, target, detail)
        SELECT p_actor, 'inspection.create', 'inspection/' || i.id,
               jsonb_build_object('building_id', p_building, 'failed', p_failed)
        FROM i),
    s AS (
        UPDATE buildings b
        SET risk_level = p_risk, last_inspected_at = p_at, last_inspection_id = (SELECT id FROM i),
            next_inspection_on = (p_at AT TIME ZONE 'Asia/Shanghai')::date
                                 + (SELECT days FROM risk_intervals WHERE risk_level = p_risk)
        WHERE b.id = p_building AND (b.last_inspected_at IS NULL OR b.last_inspected_at <= p_at)
          AND EXISTS (SELECT 1 FROM i)
        RETURNING b.next_inspection_on)
    SELECT (SELECT id FROM i), (SELECT next_inspection_on FROM s) INTO o_id, o_next_inspection_on;
    IF o_id IS NULL THEN
        RETURN;  -- the client id is stored: a resend, answered with the stored inspection
    END IF;
    IF v_earlier = 0 AND cardinality(p_open_codes) = 0 THEN
        o_opened := '{}';  -- the common inspection: all passed, nothing to re-inspect
        o_rectified := '{}';
        o_reopened := '{}';
        RETURN;
    END IF;

    WITH e AS (
        SELECT h.id, h.status, h.escalation_level, h.item_code, u.result, u.deadline,
               CASE WHEN u.result = 'pass' THEN 'rectified' ELSE 'rectifying' END AS target
        FROM hazards h
        JOIN unnest(p_rcodes, p_rresults, p_rdeadlines) AS u(code, result, deadline) ON u.code = h.item_code
        WHERE h.building_id = p_building AND h.status <> 'rectified' AND h.found_at < p_at
        ORDER BY h.id FOR UPDATE OF h),
    re AS (
        UPDATE hazards h
        SET status = e.target, updated_at = p_at, rectify_by = coalesce(e.deadline, h.rectify_by),
            escalation_due_at = CASE WHEN e.deadline IS NULL THEN h.escalation_due_at END,
            rectified_at = CASE WHEN e.result = 'pass' THEN p_at ELSE h.rectified_at END
        FROM e WHERE h.id = e.id
        RETURNING h.id, h.status),
    rev AS (
        INSERT INTO hazard_events (hazard_id, at, actor, action, from_status, to_status, deadline, inspection_id)
        SELECT e.id, p_at, p_actor, 'reinspect_' || e.result, e.status, e.target, e.deadline, o_id
        FROM e ORDER BY e.id),
    rjob AS (
        INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, scheduled_at)
        SELECT 'deadlines', 'gridmap:hazard_deadline', 'hazard:' || e.id,
               jsonb_build_object('hazard_id', e.id, 'level', e.escalation_level), e.deadline
        FROM e WHERE e.deadline IS NOT NULL ORDER BY e.id),
    rau AS (
        INSERT INTO audit_log (actor, action, target, detail)
        SELECT p_actor, 'hazard.transition', 'hazard/' || e.id,
               jsonb_build_object('step', 'reinspect_' || e.result, 'frm', e.status, 'to', e.target)
        FROM e ORDER BY e.id),
    new AS (
        INSERT INTO hazards (category, severity, status, description, found_at, rectify_by, building_id, geom,
                             responsible_party, source, inspection_id, item_code, reported_by, updated_at)
        SELECT u.category, u.severity, 'open', u.description, p_at, u.deadline, p_building,
               coalesce(v_point, (SELECT geom FROM buildings WHERE id = p_building)),
               u.party, 'inspection', o_id, u.code, p_actor, p_at
        FROM unnest(p_categories, p_severities, p_descriptions, p_deadlines, p_parties, p_open_codes)
             AS u(category, severity, description, deadline, party, code)
        WHERE NOT EXISTS (SELECT 1 FROM e WHERE e.item_code = u.code)
        RETURNING id, rectify_by),
    ev AS (
        INSERT INTO hazard_events (hazard_id, at, actor, action, from_status, to_status, deadline, inspection_id)
        SELECT id, p_at, p_actor, 'open', NULL, 'open', rectify_by, o_id FROM new),
    job AS (
        INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, scheduled_at)
        SELECT 'deadlines', 'gridmap:hazard_deadline', 'hazard:' || id,
               jsonb_build_object('hazard_id', id, 'level', 'grid'), rectify_by FROM new)
    SELECT (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM new),
           (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM re WHERE status = 'rectified'),
           (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM re WHERE status <> 'rectified')
    INTO o_opened, o_rectified, o_reopened;
END
$fn$
"""


def upgrade() -> None:
    op.execute(_FUNCTION.replace("ARGS", _ARGS, 1))


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS gridmap_record_inspection({_ARGS})")  # the names are ignored
