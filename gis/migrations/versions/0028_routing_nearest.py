"""routing rules choose the nearest on-duty worker: ``routing_rules.pick``

``pick`` says how a lead rule chooses among several on-duty holders of its target: ``first`` (the
smallest person id, as before) or ``nearest`` (the holder whose latest patrol GPS point, no older
than ``GRIDMAP_POSITION_RECENT_S``, lies nearest the incident; nobody with a recent point: as
``first``). Only person targets (grid_worker, aux_police, beat_officer) of lead rules choose;
the check keeps the data from saying otherwise.

Revision ID: 0028
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("routing_rules", sa.Column("pick", sa.String(8), server_default="first", nullable=False))
    op.create_check_constraint(
        op.f("ck_routing_rules_pick"),
        "routing_rules",
        "pick = 'first' OR (pick = 'nearest' AND role = 'lead' "
        "AND target IN ('grid_worker', 'aux_police', 'beat_officer'))",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_routing_rules_pick"), "routing_rules", type_="check")
    op.drop_column("routing_rules", "pick")
