"""visits and patrols: household visits (走访) and patrol tracks (巡查轨迹) with their GPS points

``visits``: one visit by a person to a building (or a standard address in it: the building is
stored too, so that coverage counts per building), of a kind (routine, night, care, follow-up),
with the four-knows checks (四知: people, family, address, situation), where and when it was made,
and the incidents or hazards it produced. ``client_id`` is the phone's own id for the visit,
unique per person, so a resent batch stores nothing twice. Assigned by the point trigger like
the other point tables (the generation in force when stored).

``buildings.last_visited_at``: the latest visit of each building, kept by a statement-level
trigger on ``visits`` (one UPDATE per INSERT statement, however many rows), so the county-wide
"not visited in N days" layer reads one table instead of anti-joining every building with the
visits. Visits are only ever inserted (the API has no edit or delete); the column starts from the
visits already stored (none before this revision).

``patrols``: a person's patrol of a grid, started and ended; ``track`` is the simplified line of
its kept points for display (recomputed with each batch), ``length_m`` its length.
``patrol_points``: the GPS points (WGS-84, after conversion from the input CRS), one per instant
and patrol (a resent batch adds nothing). ``flagged`` points (an impossible speed from the last
kept point) are kept for the record but left out of the track and of coverage.

Revision ID: 0019
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0019"
down_revision = "0022"
branch_labels = None
depends_on = None

# Frozen copies of gis.core.vocab at this revision.
VISIT_KINDS = ("routine", "night", "care", "follow_up")
CRS = ("wgs84", "gcj02", "bd09")
ASSIGN_STATUSES = ("inside", "snapped", "outside_jurisdiction")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _assigned() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(f"{layer}_code", sa.String(32), nullable=True)
        for layer in ("town", "village", "grid", "micro_grid", "station", "beat")
    ] + [
        sa.Column("generation_id", sa.Integer(), nullable=True),
        sa.Column("assign_status", sa.String(24), nullable=True),
        sa.Column("snap_distance_m", sa.Float(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("building_id", sa.BigInteger(), nullable=False),
        # No foreign key, like incidents.address_id: the bulk loader truncates an empty addresses
        # table before a rebuild (gis.bulk.store), which a referencing key would forbid.
        sa.Column("address_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("knows_people", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("knows_family", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("knows_address", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("knows_situation", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_crs", sa.String(8), server_default="wgs84", nullable=False),
        sa.Column("incident_ids", sa.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("hazard_ids", sa.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        *_assigned(),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint(f"kind IN ({_in(VISIT_KINDS)})", name=op.f("ck_visits_kind")),
        sa.CheckConstraint(f"received_crs IN ({_in(CRS)})", name=op.f("ck_visits_received_crs")),
        sa.CheckConstraint(
            f"assign_status IS NULL OR assign_status IN ({_in(ASSIGN_STATUSES)})", name=op.f("ck_visits_assign_status")
        ),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_visits_person_id_people")),
        sa.ForeignKeyConstraint(["posting_id"], ["postings.id"], name=op.f("fk_visits_posting_id_postings")),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], name=op.f("fk_visits_building_id_buildings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
        sa.UniqueConstraint("person_id", "client_id", name=op.f("uq_visits_person_client")),
    )
    # Coverage reads the latest visit per building; the quota a person's visits per day.
    op.create_index("ix_visits_building_at", "visits", ["building_id", "at"])
    op.create_index("ix_visits_person_at", "visits", ["person_id", "at"])
    op.create_index("ix_visits_at", "visits", ["at"])
    op.create_index("ix_visits_grid", "visits", ["grid_code", "at"])
    op.create_index("ix_visits_geom", "visits", ["geom"], postgresql_using="gist")
    op.execute(
        "CREATE TRIGGER trg_visits_assign BEFORE INSERT OR UPDATE OF geom ON visits "
        "FOR EACH ROW WHEN (current_setting('gridmap.bulk', true) IS DISTINCT FROM 'on') "
        "EXECUTE FUNCTION gridmap_assign_row()"
    )

    op.add_column("buildings", sa.Column("last_visited_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("""
        CREATE FUNCTION gridmap_visits_last_visited() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE buildings b SET last_visited_at = m.at
            FROM (SELECT building_id, max(at) AS at FROM new_visits GROUP BY building_id) m
            WHERE b.id = m.building_id AND (b.last_visited_at IS NULL OR b.last_visited_at < m.at);
            RETURN NULL;
        END $$
    """)
    op.execute(
        "CREATE TRIGGER trg_visits_last_visited AFTER INSERT ON visits REFERENCING NEW TABLE AS new_visits "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_visits_last_visited()"
    )

    op.create_table(
        "patrols",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_code", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("point_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("flagged_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("length_m", sa.Float(), server_default="0", nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("track", Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=True),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_patrols_times")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_patrols_person_id_people")),
        sa.ForeignKeyConstraint(["posting_id"], ["postings.id"], name=op.f("fk_patrols_posting_id_postings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrols")),
    )
    op.create_index("ix_patrols_grid_started", "patrols", ["grid_code", "started_at"])
    op.create_index("ix_patrols_person_started", "patrols", ["person_id", "started_at"])
    op.create_index("ix_patrols_started", "patrols", ["started_at"])

    op.create_table(
        "patrol_points",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patrol_id", sa.BigInteger(), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_crs", sa.String(8), server_default="wgs84", nullable=False),
        sa.Column("speed_kmh", sa.Float(), nullable=True),
        sa.Column("flagged", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint(f"received_crs IN ({_in(CRS)})", name=op.f("ck_patrol_points_received_crs")),
        sa.ForeignKeyConstraint(
            ["patrol_id"], ["patrols.id"], name=op.f("fk_patrol_points_patrol_id_patrols"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_points")),
        sa.UniqueConstraint("patrol_id", "t", name=op.f("uq_patrol_points_patrol_t")),
    )


def downgrade() -> None:
    op.drop_table("patrol_points")
    op.drop_table("patrols")
    op.execute("DROP TRIGGER IF EXISTS trg_visits_last_visited ON visits")
    op.execute("DROP FUNCTION IF EXISTS gridmap_visits_last_visited()")
    op.drop_column("buildings", "last_visited_at")
    op.execute("DROP TRIGGER IF EXISTS trg_visits_assign ON visits")
    op.drop_table("visits")
