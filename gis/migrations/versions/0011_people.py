"""people, postings and organisation units replace the staff table

A person (people) holds postings: a role over an area of any layer, from one date to another
(postings.ends_on is the last day served, NULL = open). History is kept: ending a posting sets its
end date, nothing is overwritten. Organisation units (org_units: county centre, town centres,
village stations, police stations, departments) are responsible for an area; their members are
the postings that name the unit (postings.org_unit_id).

The rows of ``staff`` move into people + postings (one posting per row, to the row's grid; a
person per distinct ID card number, else per row). ``staff`` stays as a view of the grid-level
postings with an INSTEAD OF INSERT trigger, so readers and writers of the old table (the draft
validation, per-grid map statistics, scripts) keep working while they move to gis.people.

Roles where only one person may serve an area at a time (grid leader per grid, beat officer per
beat, chief grid leader per village, micro-grid leader per micro-grid) are held to that by an
exclusion constraint over the posting's date range (btree_gist), behind the friendlier checks
of gis.people.

Every change to people, postings or org units sends NOTIFY gridmap_boundaries (as staff changes
did, migration 0005), so the lookups' in-memory teams are reloaded when it commits.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Frozen copies of gis.core.vocab at this revision.
ROLES = (
    "grid_leader",
    "grid_worker",
    "part_time_worker",
    "aux_police",
    "community_police",
    "chief_grid_leader",
    "micro_grid_leader",
    "liaison_cadre",
    "beat_officer",
    "station_officer",
    "department_staff",
    "command_staff",
)
EXCLUSIVE = ("grid_leader", "beat_officer", "chief_grid_leader", "micro_grid_leader")
KINDS = ("county_centre", "town_centre", "village_station", "police_station", "department")
LAYERS = ("county", "town", "village", "grid", "micro_grid", "station", "beat")
COUNTY_TODAY = "(now() AT TIME ZONE 'Asia/Shanghai')::date"


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "people",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("id_card", sa.String(18), nullable=True),
        sa.Column("status", sa.String(8), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'left')", name=op.f("ck_people_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
    )
    op.create_index(
        "uq_people_id_card", "people", ["id_card"], unique=True, postgresql_where=sa.text("id_card IS NOT NULL")
    )
    op.create_table(
        "org_units",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("area_code", sa.String(32), nullable=False),
        sa.Column("parent_code", sa.String(32), nullable=True),
        sa.Column("is_key", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"kind IN ({_in(KINDS)})", name=op.f("ck_org_units_kind")),
        sa.CheckConstraint(f"layer IN ({_in(LAYERS)})", name=op.f("ck_org_units_layer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_units")),
        sa.UniqueConstraint("code", name=op.f("uq_org_units_code")),
    )
    op.create_index("ix_org_units_area", "org_units", ["layer", "area_code"])
    op.create_table(
        "postings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("area_code", sa.String(32), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"role IN ({_in(ROLES)})", name=op.f("ck_postings_role")),
        sa.CheckConstraint(f"layer IN ({_in(LAYERS)})", name=op.f("ck_postings_layer")),
        sa.CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name=op.f("ck_postings_dates")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_postings_person_id_people")),
        sa.ForeignKeyConstraint(["org_unit_id"], ["org_units.id"], name=op.f("fk_postings_org_unit_id_org_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postings")),
    )
    op.create_index("ix_postings_area", "postings", ["layer", "area_code"])
    op.create_index("ix_postings_person", "postings", ["person_id"])
    op.create_index("ix_postings_org_unit", "postings", ["org_unit_id"])
    op.execute(
        "ALTER TABLE postings ADD CONSTRAINT ex_postings_one_holder EXCLUDE USING gist "
        "(role WITH =, layer WITH =, area_code WITH =, daterange(starts_on, ends_on, '[]') WITH &&) "
        f"WHERE (role IN ({_in(EXCLUSIVE)}))"
    )
    # The staff rows: one person per ID card number (else per row), one posting per row.
    op.execute(
        "INSERT INTO people (id, name, phone, id_card, status) OVERRIDING SYSTEM VALUE "
        "SELECT DISTINCT ON (coalesce(id_card, 'row' || id)) id, name, phone, id_card, "
        "CASE WHEN bool_or(active) OVER (PARTITION BY coalesce(id_card, 'row' || id)) THEN 'active' ELSE 'left' END "
        "FROM staff ORDER BY coalesce(id_card, 'row' || id), id"
    )
    op.execute(
        "SELECT setval(pg_get_serial_sequence('people', 'id'), coalesce((SELECT max(id) FROM people), 0) + 1, false)"
    )
    # Active rows stay open from today. Inactive rows, and grid leaders beyond the first active one of
    # a grid, become history: one past day each (distinct days, so the one-holder rule holds).
    op.execute(
        f"""
        WITH ranked AS (
            SELECT s.*, row_number() OVER (PARTITION BY s.grid_code, s.role ORDER BY s.active DESC, s.id) AS rn
            FROM staff s
        ), placed AS (
            SELECT r.*, (r.active AND (r.rn = 1 OR r.role <> 'grid_leader')) AS open FROM ranked r
        )
        INSERT INTO postings (person_id, role, layer, area_code, starts_on, ends_on, note)
        SELECT coalesce((SELECT min(o.id) FROM staff o WHERE o.id_card = p.id_card), p.id), p.role, 'grid',
               p.grid_code,
               CASE WHEN p.open THEN {COUNTY_TODAY} ELSE {COUNTY_TODAY} - p.rn::int END,
               CASE WHEN p.open THEN NULL ELSE {COUNTY_TODAY} - p.rn::int END,
               'moved from staff'
        FROM placed p ORDER BY p.id
        """  # noqa: S608
    )
    op.execute("DROP TRIGGER IF EXISTS trg_staff_notify ON staff")
    op.drop_table("staff")
    _staff_view()
    for table in ("people", "postings", "org_units"):
        op.execute(
            f"CREATE TRIGGER trg_{table}_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_staff_changed()"
        )


def _staff_view() -> None:
    op.execute(
        f"""
        CREATE VIEW staff AS
        SELECT po.id, po.area_code AS grid_code, po.role, pe.name, pe.phone, pe.id_card,
               (pe.status = 'active' AND po.starts_on <= {COUNTY_TODAY}
                AND (po.ends_on IS NULL OR po.ends_on >= {COUNTY_TODAY})) AS active
        FROM postings po JOIN people pe ON pe.id = po.person_id
        WHERE po.layer = 'grid'
        """  # noqa: S608
    )
    op.execute(
        f"""
        CREATE FUNCTION gridmap_staff_view_insert() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            pid bigint;
        BEGIN
            IF NEW.id_card IS NOT NULL THEN
                SELECT id INTO pid FROM people WHERE id_card = NEW.id_card;
            END IF;
            IF pid IS NULL THEN
                INSERT INTO people (name, phone, id_card) VALUES (NEW.name, NEW.phone, NEW.id_card) RETURNING id INTO pid;
            END IF;
            INSERT INTO postings (person_id, role, layer, area_code, starts_on, ends_on, note)
            VALUES (pid, NEW.role, 'grid', NEW.grid_code,
                    {COUNTY_TODAY} - CASE WHEN coalesce(NEW.active, true) THEN 0 ELSE 1 END,
                    CASE WHEN coalesce(NEW.active, true) THEN NULL ELSE {COUNTY_TODAY} - 1 END,
                    'via staff view')
            RETURNING id INTO NEW.id;
            RETURN NEW;
        END
        $$;
        """  # noqa: S608
    )
    op.execute(
        "CREATE TRIGGER trg_staff_view_insert INSTEAD OF INSERT ON staff "
        "FOR EACH ROW EXECUTE FUNCTION gridmap_staff_view_insert()"
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS staff")
    op.execute("DROP FUNCTION IF EXISTS gridmap_staff_view_insert()")
    op.create_table(
        "staff",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("id_card", sa.String(length=18), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint(
            "role IN ('grid_leader', 'grid_worker', 'aux_police', 'community_police')", name=op.f("ck_staff_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
    )
    op.create_index(op.f("ix_staff_grid_code"), "staff", ["grid_code"], unique=False)
    # Grid postings of the four old roles go back; one row per posting (an ID card may repeat).
    op.execute(
        f"""
        INSERT INTO staff (grid_code, role, name, phone, id_card, active)
        SELECT po.area_code, po.role, pe.name, pe.phone, pe.id_card,
               pe.status = 'active' AND (po.ends_on IS NULL OR po.ends_on >= {COUNTY_TODAY})
        FROM postings po JOIN people pe ON pe.id = po.person_id
        WHERE po.layer = 'grid' AND po.role IN ('grid_leader', 'grid_worker', 'aux_police', 'community_police')
        ORDER BY po.id
        """  # noqa: S608
    )
    op.execute(
        "CREATE TRIGGER trg_staff_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON staff "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_staff_changed()"
    )
    op.drop_table("postings")
    op.drop_table("org_units")
    op.drop_table("people")
