"""notify gridmap_boundaries when staff change

Lookups keep each grid's staff in memory (gis/lookup.py) and drop it on NOTIFY gridmap_boundaries;
this statement-level trigger sends that notification after any change to the staff table, so a
new grid worker shows up in lookups as soon as the change commits (NOTIFY is delivered on commit).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION gridmap_staff_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('gridmap_boundaries', '{"staff": true}');
            RETURN NULL;
        END
        $$;
        """
    )
    op.execute(
        "CREATE TRIGGER trg_staff_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON staff "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_staff_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_staff_notify ON staff")
    op.execute("DROP FUNCTION IF EXISTS gridmap_staff_changed()")
