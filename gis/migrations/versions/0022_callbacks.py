"""callbacks (回访): the results of calling back the reporters of closed incidents

``incident_callbacks``: the result of calling back the reporter of a closed incident (satisfied,
basically satisfied, dissatisfied, with a note), by whom and through which channel (a staff
callback, or the resident's own rating). The latest result of an incident is the one that counts
for the satisfaction KPI (gis.analysis.kpis).

Incidents closed before dispatch existed keep no closing level (unknown): the KPIs count the
closing level only where it is known (gis.analysis.kpis, ``settled_in_town_rate``).

Revision ID: 0022
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0024"
branch_labels = None
depends_on = None

RESULTS = ("satisfied", "basically_satisfied", "dissatisfied")
CHANNELS = ("callback", "resident_rating", "hotline")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.create_table(
        "incident_callbacks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(16), server_default="callback", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reopened", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(f"result IN ({_in(RESULTS)})", name=op.f("ck_incident_callbacks_result")),
        sa.CheckConstraint(f"channel IN ({_in(CHANNELS)})", name=op.f("ck_incident_callbacks_channel")),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_callbacks_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_callbacks")),
    )
    op.create_index("ix_incident_callbacks_incident", "incident_callbacks", ["incident_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_incident_callbacks_incident", table_name="incident_callbacks")
    op.drop_table("incident_callbacks")
