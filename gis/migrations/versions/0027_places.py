"""Places (points of interest): names that hotline operators and residents use instead of an address

A place (a market, a school, a residential compound, ...) has a name, aliases, a kind and a position;
when it was imported with an address it also points at that standard address, so that "阳光小区3栋"
resolves to the compound's road and house number and then to its building. Every name and alias
is stored normalised (gis.spatial.address_text) in ``place_names``, which the geocoder searches for
a name contained in the query. ``context`` holds the place's normalised address, or the names of
its town and village, to tell apart two places with one name (a 农贸市场 in every town).

Places carry no unit codes: their grid is looked up from the position when asked, so a boundary
publish never leaves them stale.

Revision ID: 0027
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0027"
down_revision = "0028"
branch_labels = None
depends_on = None

# A frozen copy of gis.core.vocab.PLACE_KINDS at this revision.
KINDS = ("compound", "market", "school", "hospital", "office", "shop", "park", "station", "factory", "other")


def upgrade() -> None:
    op.create_table(
        "places",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("normalized", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("address_text", sa.Text, nullable=True),
        sa.Column("address_id", sa.BigInteger, sa.ForeignKey("addresses.id", ondelete="SET NULL"), nullable=True),
        # The normalised standard address the name stands for (a compound: its road and house
        # number, which may have no row of its own, only its buildings').
        sa.Column("address_normalized", sa.Text, nullable=True),
        sa.Column("context", sa.Text, nullable=False, server_default=""),
        sa.Column(
            "geom",
            Geometry(geometry_type="POINT", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint("kind IN ({})".format(", ".join(f"'{k}'" for k in KINDS)), name="ck_places_kind"),
        sa.UniqueConstraint("normalized", "context", name="uq_places_normalized_context"),
    )
    op.create_table(
        "place_names",
        sa.Column("place_id", sa.BigInteger, sa.ForeignKey("places.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("is_alias", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("place_id", "name", name="pk_place_names"),
    )
    op.create_index("ix_place_names_name", "place_names", ["name"])
    # Prefix searches of the geocoder (an address down to its house or group number, with or
    # without the town put in front): LIKE/range on the pattern operators, which the default
    # btree (C.UTF-8 collation) does not serve.
    op.execute("CREATE INDEX ix_addresses_normalized_prefix ON addresses (normalized text_pattern_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_addresses_normalized_prefix")
    op.drop_index("ix_place_names_name", table_name="place_names")
    op.drop_table("place_names")
    op.drop_table("places")
