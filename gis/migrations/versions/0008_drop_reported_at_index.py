"""drop ix_incidents_reported_at: ix_incidents_time_tiles leads with the same column

ix_incidents_time_tiles is (reported_at) INCLUDE (id, merc_x, merc_y, geom), so every range scan
or ordering on reported_at that the plain index served (listing newest first, statistics over a
period, the duplicate check's time window) is served by it as well; EXPLAIN ANALYZE on 1M rows
shows the same plans with the other index name and the same times within noise. Keeping both
cost a second sort of a million timestamps on every bulk import (about 0.6 s of the index rebuild)
and one more index to maintain on every insert.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_incidents_reported_at")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_incidents_reported_at ON incidents (reported_at)")
