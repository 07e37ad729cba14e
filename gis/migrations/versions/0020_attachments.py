"""Attachments: photos and files kept as evidence of incidents, inspections, hazards and visits

One row per file attached to an owner. The owner is generic (``owner_kind`` + ``owner_id``, no
foreign key) so that every kind of field record can hold attachments through the same table; the
kind's own table and scope are named in ``gis.files.owners``. The file itself is kept by content
(``sha256``, the storage key) behind ``gis.files.storage``; the row holds what was read from it:
the media type by content, the size, the EXIF position and time, the position the uploader claimed
and how far apart the two are (``flagged_far`` beyond the configured distance), and the keys of the
metadata-stripped copy served to roles below dispatcher and of the thumbnail.

The same content attached twice to one owner is one row (unique owner + sha256).

Revision ID: 0020
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None

# Frozen copies of gis.core.vocab.ATTACHMENT_OWNER_KINDS and ATTACHMENT_MEDIA_TYPES.
OWNER_KINDS = ("incident", "inspection", "hazard", "visit")
MEDIA_TYPES = ("image/jpeg", "image/png", "application/pdf")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("converted_from", sa.String(32), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("original_name", sa.String(255), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("uploaded_by", sa.String(100), nullable=False),
        sa.Column("uploaded_by_account", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_person", sa.BigInteger(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("exif_geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.Column("exif_taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("flagged_far", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("thumbnail_key", sa.String(64), nullable=True),
        sa.CheckConstraint(_in("owner_kind", OWNER_KINDS), name="ck_attachments_owner_kind"),
        sa.CheckConstraint(_in("media_type", MEDIA_TYPES), name="ck_attachments_media_type"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="ck_attachments_sha256"),
        sa.CheckConstraint("size_bytes > 0", name="ck_attachments_size"),
        sa.CheckConstraint("distance_m IS NULL OR distance_m >= 0", name="ck_attachments_distance"),
        sa.UniqueConstraint("owner_kind", "owner_id", "sha256", name="uq_attachments_owner_content"),
    )
    # Listing an owner's attachments in upload order (the unique constraint's index leads with the
    # owner too, but is ordered by hash).
    op.create_index("idx_attachments_owner", "attachments", ["owner_kind", "owner_id", "id"])
    # Finding earlier copies of the same content (their stripped copy and thumbnail are reused).
    op.create_index("idx_attachments_sha256", "attachments", ["sha256"])
    # Evidence taken far from where it is claimed, for review.
    op.create_index("idx_attachments_flagged", "attachments", ["uploaded_at"], postgresql_where=sa.text("flagged_far"))


def downgrade() -> None:
    op.drop_table("attachments")
