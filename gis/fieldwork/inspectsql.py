"""The statements of ``POST /buildings/{id}/inspections`` (gis.fieldwork.inspections), few and
large: at hundreds of inspections a second every round trip counts, so an inspection is read and
locked in one statement (``LOCK_SQL``), and written with its new hazards in one
(``WRITE_OPEN_SQL``); only when earlier hazards of its items are re-inspected (rare) is it written
first (``WRITE_SQL``), the hazards re-inspected one statement each, and the new ones opened after
(``OPEN_SQL``).
"""

from __future__ import annotations

import sqlalchemy as sa

from gis.core.prepared import positional
from gis.core.vocab import COUNTY_TZ_NAME
from gis.fieldwork.overdue import HAZARD_TASK
from gis.work.jobs import DEADLINE_QUEUE

# The inspection a client id names (a replay answers with it).
REPLAY_SQL = sa.text(
    """SELECT i.id, i.building_id, i.at, i.outcome, i.risk_level, k.kind, k.version, b.next_inspection_on,
              (SELECT coalesce(array_agg(posting_id ORDER BY posting_id), '{}') FROM inspection_inspectors
               WHERE inspection_id = i.id) AS team,
              (SELECT coalesce(json_agg(json_build_object('code', r.item_code, 'result', r.result, 'note', r.note)
                                        ORDER BY r.item_code), '[]')
               FROM inspection_results r WHERE r.inspection_id = i.id) AS results,
              (SELECT coalesce(array_agg(h.id ORDER BY h.id), '{}') FROM hazards h
               WHERE h.inspection_id = i.id) AS opened,
              (SELECT coalesce(array_agg(e.hazard_id ORDER BY e.id), '{}') FROM hazard_events e
               WHERE e.inspection_id = i.id AND e.action = 'reinspect_pass') AS rectified,
              (SELECT coalesce(array_agg(e.hazard_id ORDER BY e.id), '{}') FROM hazard_events e
               WHERE e.inspection_id = i.id AND e.action = 'reinspect_fail') AS reopened
       FROM inspections i JOIN checklists k ON k.id = i.checklist_id JOIN buildings b ON b.id = i.building_id
       WHERE i.client_id = :client_id"""
)

# The building (locked: one inspection at a time settles its risk; inside the caller's scope),
# which of the given postings were held that day, and the building's unrectified hazards of the
# inspected items (locked, oldest first; the building's lock is taken first, as b is read first),
# and the checklist version the inspection names (:version NULL: the latest of :kind).
LOCK_SQL = """
WITH b AS (
    SELECT b.id FROM buildings b WHERE b.id = :building AND {in_scope} FOR UPDATE),
h AS (
    SELECT h.id, h.status, h.severity, h.found_at, h.rectify_by, h.escalation_level, h.inspection_id, h.item_code
    FROM hazards h
    WHERE h.building_id = (SELECT id FROM b) AND h.status <> 'rectified' AND h.item_code = ANY(:codes)
    ORDER BY h.id FOR UPDATE)
SELECT (SELECT id FROM b) AS building,
       (SELECT coalesce(array_agg(p.id), '{{}}') FROM postings p
        WHERE p.id = ANY(CAST(:postings AS bigint[])) AND p.starts_on <= :day
          AND (p.ends_on IS NULL OR p.ends_on >= :day)) AS held,
       (SELECT coalesce(json_agg(h ORDER BY h.id), '[]') FROM h) AS hazards,
       (SELECT c.id FROM checklists c
        WHERE c.kind = :kind AND (CAST(:version AS integer) IS NULL OR c.version = CAST(:version AS integer))
        ORDER BY c.version DESC LIMIT 1) AS checklist
"""

# The inspection, its team and results, the building's risk and next date (if this is its latest
# inspection) and the audit entry, in one statement; nothing but a NULL id when the client id is
# already stored (a replay).
_WRITE_CTES = f"""
WITH i AS (
    INSERT INTO inspections (building_id, room, checklist_id, at, geom, notes, outcome, risk_level,
                             failed_items, actor, client_id)
    VALUES (:building, :room, :checklist, :at,
            ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326),
            :notes, :outcome, :risk, :failed, :actor, :client_id)
    ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING
    RETURNING id),
t AS (
    INSERT INTO inspection_inspectors (inspection_id, posting_id)
    SELECT i.id, p FROM i, unnest(CAST(:postings AS bigint[])) p),
r AS (
    INSERT INTO inspection_results (inspection_id, item_code, result, note)
    SELECT i.id, u.code, u.result, u.note
    FROM i, unnest(CAST(:codes AS text[]), CAST(:results AS text[]), CAST(:notes_each AS text[]))
         AS u(code, result, note)),
s AS (
    UPDATE buildings b
    SET risk_level = CAST(:risk AS varchar), last_inspected_at = :at, last_inspection_id = (SELECT id FROM i),
        next_inspection_on = (CAST(:at AS timestamptz) AT TIME ZONE '{COUNTY_TZ_NAME}')::date
                             + (SELECT days FROM risk_intervals WHERE risk_level = CAST(:risk AS varchar))
    WHERE b.id = :building AND (b.last_inspected_at IS NULL OR b.last_inspected_at <= :at)
      AND EXISTS (SELECT 1 FROM i)
    RETURNING b.next_inspection_on),
a AS (
    INSERT INTO audit_log (actor, action, target, detail)
    SELECT :actor, 'inspection.create', 'inspection/' || i.id,
           jsonb_build_object('building_id', CAST(:building AS bigint), 'failed', CAST(:failed AS int)) FROM i)"""  # noqa: S608 - a constant zone name
_WRITTEN = "SELECT (SELECT id FROM i) AS id, (SELECT next_inspection_on FROM s) AS next_inspection_on"
WRITE_SQL = sa.text(f"{_WRITE_CTES}\n{_WRITTEN}")

# The hazards of failed items (one row per item), their first events and their deadline jobs.
# INSPECTION is the inspection's id, CODES the items' codes, GUARD a condition for opening any.
_OPEN_CTES = f"""
new AS (
    INSERT INTO hazards (category, severity, status, description, found_at, rectify_by, building_id, geom,
                         responsible_party, source, inspection_id, item_code, reported_by, updated_at)
    SELECT u.category, u.severity, 'open', u.description, :at, u.deadline, :building,
           coalesce(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326),
                    (SELECT geom FROM buildings WHERE id = :building)),
           u.party, 'inspection', INSPECTION, u.code, :actor, :at
    FROM unnest(CAST(:categories AS text[]), CAST(:severities AS text[]), CAST(:descriptions AS text[]),
                CAST(:deadlines AS timestamptz[]), CAST(:parties AS text[]), CAST(CODES AS text[]))
         AS u(category, severity, description, deadline, party, code)
    GUARD
    RETURNING id, item_code, rectify_by),
ev AS (
    INSERT INTO hazard_events (hazard_id, at, actor, action, from_status, to_status, deadline, inspection_id)
    SELECT id, :at, :actor, 'open', NULL, 'open', rectify_by, INSPECTION FROM new),
job AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, scheduled_at)
    SELECT '{DEADLINE_QUEUE}', '{HAZARD_TASK}', 'hazard:' || id,
           jsonb_build_object('hazard_id', id, 'level', 'grid'), rectify_by FROM new)
"""  # noqa: S608 - only constants are formatted in


def _open_ctes(inspection: str, codes: str, guard: str) -> str:
    return _OPEN_CTES.replace("INSPECTION", inspection).replace("CODES", codes).replace("GUARD", guard)


_OPENED = "SELECT id, item_code FROM new ORDER BY id"
OPEN_SQL = sa.text("WITH " + _open_ctes(":inspection", ":codes", "") + _OPENED)

# Both in one statement (one round trip less), when no earlier hazard of these items is to be
# re-inspected first: the inspection and the hazards of its failed items (``open_codes``); the
# hazards only when the inspection was stored (not for a replay).
WRITE_OPEN_SQL = sa.text(
    f"{_WRITE_CTES},"  # noqa: S608 - only constants are put together
    + _open_ctes("(SELECT id FROM i)", ":open_codes", "WHERE EXISTS (SELECT 1 FROM i)")
    + f"{_WRITTEN}, (SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM new) AS opened"  # noqa: S608
)

# The common inspection in one call (gis.fieldwork.inspectfast; the function is migration 0035's,
# which says what it checks and writes). Every argument is cast, so that the function is found
# whatever types the driver gives the values.
_ONE_ARGS = (
    ("building", "bigint"), ("whole", "boolean"), ("towns", "text[]"), ("villages", "text[]"), ("grids", "text[]"),
    ("micro_grids", "text[]"), ("stations", "text[]"), ("beats", "text[]"), ("kind", "text"),
    ("version", "integer"), ("checklist", "integer"), ("postings", "bigint[]"), ("day", "date"),
    ("at", "timestamptz"), ("room", "text"), ("lon", "float8"), ("lat", "float8"), ("notes", "text"),
    ("outcome", "text"), ("risk", "text"), ("failed", "integer"), ("actor", "text"), ("client_id", "text"),
    ("codes", "text[]"), ("results", "text[]"), ("notes_each", "text[]"), ("rcodes", "text[]"),
    ("rresults", "text[]"), ("rdeadlines", "timestamptz[]"), ("categories", "text[]"), ("severities", "text[]"),
    ("descriptions", "text[]"), ("deadlines", "timestamptz[]"), ("parties", "text[]"), ("open_codes", "text[]"),
)  # fmt: skip
ONE_SQL = sa.text(
    "SELECT o_ok AS ok, o_checklist AS checklist, o_id AS id, o_next_inspection_on AS next_inspection_on, "  # noqa: S608
    "o_opened AS opened, o_rectified AS rectified, o_reopened AS reopened FROM gridmap_record_inspection("
    + ", ".join(f"CAST(:{name} AS {kind})" for name, kind in _ONE_ARGS)
    + ")"
)
# Run prepared on the server (gis.core.prepared): the call's plan does not depend on its values,
# and parsing and planning its 35 casts each time was database CPU of every inspection.
ONE = positional(ONE_SQL)
