"""Road centrelines (道路中心线), for redistricting proposals that prefer roads as unit borders.

Roads were only names on addresses and buildings; a proposal that should follow roads needs their
lines. One row per road (or road piece): its name, a kind (e.g. main road, street, lane) and a
line geometry in EPSG:4326, with a spatial index (the proposal reads the roads near a town).

Revision ID: 0030
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0030"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roads",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.String(24), nullable=False, server_default="road"),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column(
            "geom",
            Geometry(geometry_type="MULTILINESTRING", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_index("idx_roads_geom", "roads", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_index("idx_roads_geom", table_name="roads")
    op.drop_table("roads")
