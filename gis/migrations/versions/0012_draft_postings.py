"""draft_postings: a planner's decisions about people in a boundary draft

Publishing a redraw moves the postings of deleted, split and merged units to their successors
(boundaries/postingplan.py proposes the moves from the areas' overlap). A planner may override
the proposal per posting, in the draft, before publishing: move a posting to another unit of the
draft (``move``), end it at publish (``end``), or post a person to a unit of the draft from the
publish day (``add``; a new unit has no postings until it exists). The rows stay after the draft
is published or discarded, as the record of what was decided.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "draft_postings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("role", sa.String(24), nullable=True),
        sa.Column("to_code", sa.String(32), nullable=True),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("action IN ('move', 'end', 'add')", name=op.f("ck_draft_postings_action")),
        sa.CheckConstraint(
            "(action = 'move' AND posting_id IS NOT NULL AND to_code IS NOT NULL AND person_id IS NULL) "
            "OR (action = 'end' AND posting_id IS NOT NULL AND to_code IS NULL AND person_id IS NULL) "
            "OR (action = 'add' AND posting_id IS NULL AND person_id IS NOT NULL AND role IS NOT NULL "
            "AND to_code IS NOT NULL)",
            name=op.f("ck_draft_postings_shape"),
        ),
        sa.ForeignKeyConstraint(
            ["draft_id"], ["drafts.id"], name=op.f("fk_draft_postings_draft_id_drafts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["posting_id"], ["postings.id"], name=op.f("fk_draft_postings_posting_id_postings")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_draft_postings_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draft_postings")),
    )
    # One decision per posting per draft; one planned posting per person, role and unit.
    op.create_index(
        "uq_draft_postings_posting",
        "draft_postings",
        ["draft_id", "posting_id"],
        unique=True,
        postgresql_where=sa.text("posting_id IS NOT NULL"),
    )
    op.create_index(
        "uq_draft_postings_add",
        "draft_postings",
        ["draft_id", "person_id", "role", "to_code"],
        unique=True,
        postgresql_where=sa.text("action = 'add'"),
    )


def downgrade() -> None:
    op.drop_table("draft_postings")
