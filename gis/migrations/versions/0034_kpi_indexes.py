"""Indexes for the KPI read (issue 18, gis.analysis.kpirows): the year by grid read row by row.

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
  the latest callback per incident is an index-only walk without a sort.
- ``ix_incident_events_reopen``: the reopened incidents without reading the whole event log.

Revision ID: 0034
Revises: 0030
"""

from __future__ import annotations

from alembic import op

revision = "0034"
down_revision = "0030"
branch_labels = None
depends_on = None

# Fixed-width columns first: the scan finds them at fixed offsets before the variable ones.
KPI_INDEX = (
    "CREATE INDEX ix_incidents_kpi ON incidents (reported_at) INCLUDE (id, accepted_at, on_scene_at, handled_at, "
    "closed_at, deadline_at, escalated_at, status, closed_level, town_code, village_code, grid_code)"
)
CALLBACK_INDEX = (
    "CREATE INDEX ix_incident_callbacks_latest ON incident_callbacks (incident_id, at DESC, id DESC) INCLUDE (result)"
)
REOPEN_INDEX = "CREATE INDEX ix_incident_events_reopen ON incident_events (incident_id) WHERE action = 'reopen'"


def upgrade() -> None:
    op.execute(KPI_INDEX)
    op.execute(CALLBACK_INDEX)
    op.execute(REOPEN_INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_incident_events_reopen")
    op.execute("DROP INDEX IF EXISTS ix_incident_callbacks_latest")
    op.execute("DROP INDEX IF EXISTS ix_incidents_kpi")
