"""The KPI read (issue 18, gis.analysis.kpirows): each incident's latest callback result and
whether it was ever reopened kept on the incident, and the indexes the read scans.

- ``incidents.last_callback_result`` (the result of its latest callback, by time then id; NULL: none)
  and ``incidents.was_reopened`` (a ``reopen`` event exists), kept by triggers on
  ``incident_callbacks`` and ``incident_events`` (every insert, update and delete, whoever writes)
  and filled here from the existing rows. The KPIs read them with the incident instead of joining
  the latest callback and the reopen events to every incident of the windows: measured on 1M
  incidents with 330,000 callbacks, those two joins were ~1.0 s of the query's ~2.0 s of CPU.
- ``ix_incidents_kpi``: the incidents of a report window with the columns the KPIs read, so that
  the window is an index-only range scan. The general window index (``ix_incidents_time_tiles``)
  leads with the same column but makes every row a heap visit: measured on 1M incidents whose heap
  order is not their report order, 868,018 buffers for 1,000,000 rows; here ~125,000 index pages,
  and a narrow tuple to read instead of the wide incident row (texts, geometries). Town, village
  and grid are the levels KPIs are grouped by most; other groupings and filters on other columns
  still read the index and fetch the rest from the heap. The included columns change with the
  workflow (status, the step times), which already takes those updates off HOT (``ix_incidents_open``
  holds the status).
- ``ix_incident_callbacks_latest``: each incident's latest callback result in index order, so
  the trigger's lookup of an incident's latest callback is one index probe.
- ``ix_incident_events_reopen``: whether an incident was reopened, without reading its whole log.

Revision ID: 0034
Revises: 0030
"""

from __future__ import annotations

from alembic import op

revision = "0034"
down_revision = "0032"
branch_labels = None
depends_on = None

# Fixed-width columns first: the scan finds them at fixed offsets before the variable ones.
KPI_INDEX = (
    "CREATE INDEX ix_incidents_kpi ON incidents (reported_at) INCLUDE (id, accepted_at, on_scene_at, handled_at, "
    "closed_at, deadline_at, escalated_at, was_reopened, status, closed_level, last_callback_result, town_code, "
    "village_code, grid_code)"
)
CALLBACK_INDEX = (
    "CREATE INDEX ix_incident_callbacks_latest ON incident_callbacks (incident_id, at DESC, id DESC) INCLUDE (result)"
)
REOPEN_INDEX = "CREATE INDEX ix_incident_events_reopen ON incident_events (incident_id) WHERE action = 'reopen'"


# Row triggers: a callback or an event is written one at a time (gis.analysis.callbacks,
# gis.incidents.reopen); the incident is updated only when its figure changes.
CALLBACK_FUNCTION = """
CREATE FUNCTION gridmap_incident_callback_result() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target bigint;
BEGIN
    FOREACH target IN ARRAY ARRAY[
        CASE WHEN TG_OP <> 'DELETE' THEN NEW.incident_id END,
        CASE WHEN TG_OP <> 'INSERT' THEN OLD.incident_id END]
    LOOP
        CONTINUE WHEN target IS NULL;
        UPDATE incidents i SET last_callback_result = latest.result
        FROM (SELECT (SELECT c.result FROM incident_callbacks c WHERE c.incident_id = target
                      ORDER BY c.at DESC, c.id DESC LIMIT 1) AS result) latest
        WHERE i.id = target AND i.last_callback_result IS DISTINCT FROM latest.result;
    END LOOP;
    RETURN NULL;
END $$
"""
REOPEN_FUNCTION = """
CREATE FUNCTION gridmap_incident_reopened() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target bigint;
BEGIN
    FOREACH target IN ARRAY ARRAY[
        CASE WHEN TG_OP <> 'DELETE' AND NEW.action = 'reopen' THEN NEW.incident_id END,
        CASE WHEN TG_OP <> 'INSERT' AND OLD.action = 'reopen' THEN OLD.incident_id END]
    LOOP
        CONTINUE WHEN target IS NULL;
        UPDATE incidents i SET was_reopened = now_reopened.yes
        FROM (SELECT EXISTS (SELECT 1 FROM incident_events e
                             WHERE e.incident_id = target AND e.action = 'reopen') AS yes) now_reopened
        WHERE i.id = target AND i.was_reopened IS DISTINCT FROM now_reopened.yes;
    END LOOP;
    RETURN NULL;
END $$
"""
TRIGGERS = (
    "CREATE TRIGGER trg_incident_callbacks_result AFTER INSERT OR UPDATE OR DELETE ON incident_callbacks "
    "FOR EACH ROW EXECUTE FUNCTION gridmap_incident_callback_result()",
    # The event log takes 3-4 rows per report (intake's hot path), almost none a reopening: the
    # WHEN clauses keep the function from being called for the others.
    "CREATE TRIGGER trg_incident_events_reopened AFTER INSERT ON incident_events "
    "FOR EACH ROW WHEN (NEW.action = 'reopen') EXECUTE FUNCTION gridmap_incident_reopened()",
    "CREATE TRIGGER trg_incident_events_reopened_upd AFTER UPDATE ON incident_events "
    "FOR EACH ROW WHEN (OLD.action = 'reopen' OR NEW.action = 'reopen') EXECUTE FUNCTION gridmap_incident_reopened()",
    "CREATE TRIGGER trg_incident_events_reopened_del AFTER DELETE ON incident_events "
    "FOR EACH ROW WHEN (OLD.action = 'reopen') EXECUTE FUNCTION gridmap_incident_reopened()",
)
FILL = (
    "UPDATE incidents i SET last_callback_result = latest.result FROM (SELECT DISTINCT ON (c.incident_id) c.incident_id, "
    "c.result FROM incident_callbacks c ORDER BY c.incident_id, c.at DESC, c.id DESC) latest "
    "WHERE latest.incident_id = i.id",
    "UPDATE incidents i SET was_reopened = TRUE WHERE EXISTS (SELECT 1 FROM incident_events e "
    "WHERE e.incident_id = i.id AND e.action = 'reopen')",
)


def upgrade() -> None:
    # Both columns are added without rewriting the table (a NULL, a constant default).
    op.execute("ALTER TABLE incidents ADD COLUMN last_callback_result varchar(20)")
    op.execute("ALTER TABLE incidents ADD COLUMN was_reopened boolean NOT NULL DEFAULT FALSE")
    op.execute(CALLBACK_INDEX)
    op.execute(REOPEN_INDEX)
    for statement in FILL:
        op.execute(statement)
    op.execute(CALLBACK_FUNCTION)
    op.execute(REOPEN_FUNCTION)
    for statement in TRIGGERS:
        op.execute(statement)
    op.execute(KPI_INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_incidents_kpi")
    for name in (
        "trg_incident_events_reopened",
        "trg_incident_events_reopened_upd",
        "trg_incident_events_reopened_del",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON incident_events")
    op.execute("DROP TRIGGER IF EXISTS trg_incident_callbacks_result ON incident_callbacks")
    op.execute("DROP FUNCTION IF EXISTS gridmap_incident_reopened()")
    op.execute("DROP FUNCTION IF EXISTS gridmap_incident_callback_result()")
    op.execute("DROP INDEX IF EXISTS ix_incident_events_reopen")
    op.execute("DROP INDEX IF EXISTS ix_incident_callbacks_latest")
    op.execute("ALTER TABLE incidents DROP COLUMN IF EXISTS was_reopened")
    op.execute("ALTER TABLE incidents DROP COLUMN IF EXISTS last_callback_result")
