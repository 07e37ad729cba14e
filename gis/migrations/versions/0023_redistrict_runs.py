"""Redistricting runs: one row per proposal job (gis.analysis.redistrict), with its progress

The API inserts the row (``queued``) and defers the job in the same transaction; the worker moves it
to ``running``, updates ``progress`` (0..1) and ``message`` as it goes (each update committed on its
own so that a reader sees it while the job runs), and ends it ``done`` (with the draft it created and
the report), ``infeasible`` (with the reason) or ``failed``.

Revision ID: 0023
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0023"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redistrict_runs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("area_code", sa.String(32), nullable=False),
        sa.Column("params", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("draft_id", sa.Integer, sa.ForeignKey("drafts.id", ondelete="SET NULL"), nullable=True),
        sa.Column("report", JSONB, nullable=True),
        sa.Column("author", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'infeasible', 'failed')", name="ck_redistrict_runs_status"
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name="ck_redistrict_runs_progress"),
    )


def downgrade() -> None:
    op.drop_table("redistrict_runs")
