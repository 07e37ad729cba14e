"""incidents carry their Web Mercator position as integers; the tile index covers it

A county-zoom tile of a year reads ~200k incidents and puts each in a screen pixel. Computing the
pixel from lon/lat (ln, tan, radians per row) and testing the geometry against the tile window
were most of the cost. Two stored generated columns hold the position once, as integer fractions
(1/2**30) of the Web Mercator square; the pixel at any zoom up to 22 is then a bit shift, and the
tile window is four integer comparisons. The covering index on the time window gains the two
columns so a tile stays an index-only scan. No trigger: PostgreSQL computes the columns in the
insert or update itself, and the number of indexes on incidents does not change.

Points outside the Web Mercator square (|lat| > 85.0511 or |lon| > 180) get NULL and appear in
no tile, as before.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copies of gis.core.pointmodels.MERC_X_SQL / MERC_Y_SQL as of this revision.
INSIDE = "abs(ST_Y(geom)) <= 85.0511287798066 AND abs(ST_X(geom)) <= 180"
MERC_X = f"CASE WHEN {INSIDE} THEN floor((ST_X(geom) + 180) / 360 * 1073741824)::integer END"
MERC_Y = (
    f"CASE WHEN {INSIDE} THEN floor((0.5 - asinh(tan(radians(ST_Y(geom)))) / (2 * pi())) * 1073741824)::integer END"
)

OLD_INDEX = "CREATE INDEX ix_incidents_time_tiles ON incidents (reported_at) INCLUDE (id, geom)"
# The position before geom: a tile reads id and the position only, and PostgreSQL decodes an index
# tuple's columns up to the last one needed, so it never has to step over the geometry.
NEW_INDEX = "CREATE INDEX ix_incidents_time_tiles ON incidents (reported_at) INCLUDE (id, merc_x, merc_y, geom)"


def upgrade() -> None:
    # One ALTER so that the table is rewritten once.
    op.execute(
        f"ALTER TABLE incidents ADD COLUMN merc_x integer GENERATED ALWAYS AS ({MERC_X}) STORED, "
        f"ADD COLUMN merc_y integer GENERATED ALWAYS AS ({MERC_Y}) STORED"
    )
    op.execute("COMMENT ON COLUMN incidents.merc_x IS 'Web Mercator x in 1/2^30 of the world, west to east (tiles)'")
    op.execute("COMMENT ON COLUMN incidents.merc_y IS 'Web Mercator y in 1/2^30 of the world, north to south (tiles)'")
    # Replaced rather than added: heat maps still read (reported_at, geom) from it, and intake keeps
    # the same number of indexes to maintain.
    op.execute("DROP INDEX IF EXISTS ix_incidents_time_tiles")
    op.execute(NEW_INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_incidents_time_tiles")
    op.execute("ALTER TABLE incidents DROP COLUMN IF EXISTS merc_x, DROP COLUMN IF EXISTS merc_y")
    op.execute(OLD_INDEX)
