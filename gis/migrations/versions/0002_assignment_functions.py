"""assignment functions and triggers

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POINT_TABLES = ("incidents", "buildings", "addresses", "hazards")
SQL = Path(__file__).resolve().parents[2] / "sql" / "assign.sql"


def upgrade() -> None:
    op.execute(SQL.read_text())
    for table in POINT_TABLES:
        op.execute(
            f"CREATE TRIGGER trg_{table}_assign BEFORE INSERT OR UPDATE OF geom ON {table} "
            f"FOR EACH ROW WHEN (current_setting('gridmap.bulk', true) IS DISTINCT FROM 'on') "
            f"EXECUTE FUNCTION gridmap_assign_row()"
        )


def downgrade() -> None:
    for table in POINT_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_assign ON {table}")
    for fn in (
        "gridmap_assign_row()",
        "gridmap_assign(geometry, timestamptz)",
        "gridmap_snap_tolerance()",
        "gridmap_parent(text, text, integer)",
        "gridmap_area_nearest(geometry, text, integer, double precision)",
        "gridmap_area_covering(geometry, text, integer)",
        "gridmap_generation_at(timestamptz)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
