"""dispatch: who holds an incident (assignments), the routing rules, and the loop's timestamps

``incident_assignments``: an incident's lead holder and co-handlers, each a person or an
organisation unit (exactly one), each with its own state (offered -> accepted / declined with a
reason -> done; ``withdrawn`` when a re-dispatch or an expired offer replaces it), its acceptance
deadline (``accept_by``; for a summons (吹哨) the report-in deadline) and the actor of each step.
At most one active (offered or accepted) lead per incident, and one active assignment per holder
and incident (partial unique indexes).

``routing_rules``: data, edited by admins: a rule matches an incident by source, category and
escalation level (NULL = any) and names a target: a place-based posting of the incident's area
(grid_worker, aux_police: the grid's; beat_officer: the beat's), the centre responsible for the
area (village_centre, town_centre, county_centre) or a fixed organisation unit (org_unit, by
code). The lead is the matching lead rule of smallest priority that finds someone on duty; every
matching co rule adds its holders. The default rules are seeded here.

``incident_supervisions``: supervision orders (督办) with a due date and a required reply.

incidents gain the loop's timestamps: dispatched_at, accepted_at, on_scene_at (+ the position
reported on arrival), handled_at, verified_at, and closed_level (the escalation level at closing).
A statement-level trigger stamps dispatched_at with the first offer, so the one-statement intake
(gis.incidents.intake) dispatches without a second statement.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Frozen copies of gis.core.vocab at this revision.
STATES = ("offered", "accepted", "declined", "done", "withdrawn")
TARGETS = ("grid_worker", "aux_police", "beat_officer", "village_centre", "town_centre", "county_centre", "org_unit")
LEVELS = ("grid", "village", "town", "county")
PUBLIC_ORDER = ("public_order", "theft", "fraud", "conflict_escalation", "mass_gathering")
COUNTY_CODE = "330421"


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.create_table(
        "incident_assignments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(8), server_default="dispatch", nullable=False),
        sa.Column("role", sa.String(4), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(10), server_default="offered", nullable=False),
        sa.Column("level", sa.String(8), server_default="grid", nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("accept_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offered_by", sa.String(100), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.String(100), nullable=True),
        sa.Column("declined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declined_by", sa.String(100), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(100), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('dispatch', 'summon')", name=op.f("ck_incident_assignments_kind")),
        sa.CheckConstraint("role IN ('lead', 'co')", name=op.f("ck_incident_assignments_role")),
        sa.CheckConstraint(f"state IN ({_in(STATES)})", name=op.f("ck_incident_assignments_state")),
        sa.CheckConstraint(f"level IN ({_in(LEVELS)})", name=op.f("ck_incident_assignments_level")),
        sa.CheckConstraint(
            "(person_id IS NULL) <> (org_unit_id IS NULL)", name=op.f("ck_incident_assignments_one_holder")
        ),
        sa.CheckConstraint(
            "state <> 'declined' OR coalesce(decline_reason, '') <> ''", name=op.f("ck_incident_assignments_reason")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_assignments_incident_id_incidents"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_incident_assignments_person_id_people")),
        sa.ForeignKeyConstraint(
            ["org_unit_id"], ["org_units.id"], name=op.f("fk_incident_assignments_org_unit_id_org_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_assignments")),
    )
    op.create_index("ix_incident_assignments_incident", "incident_assignments", ["incident_id"])
    active = sa.text("state IN ('offered', 'accepted')")
    # The queues: a person's or a unit's open work, by deadline.
    op.create_index(
        "ix_incident_assignments_person", "incident_assignments", ["person_id", "accept_by"], postgresql_where=active
    )
    op.create_index(
        "ix_incident_assignments_unit", "incident_assignments", ["org_unit_id", "accept_by"], postgresql_where=active
    )
    op.create_index(
        "uq_incident_assignments_lead",
        "incident_assignments",
        ["incident_id"],
        unique=True,
        postgresql_where=sa.text("role = 'lead' AND kind = 'dispatch' AND state IN ('offered', 'accepted')"),
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_incident_assignments_holder ON incident_assignments "
        "(incident_id, coalesce(person_id, 0), coalesce(org_unit_id, 0)) WHERE state IN ('offered', 'accepted')"
    )

    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.String(24), nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("level", sa.String(8), nullable=True),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("org_unit_code", sa.String(32), nullable=True),
        sa.Column("role", sa.String(4), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="100", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"target IN ({_in(TARGETS)})", name=op.f("ck_routing_rules_target")),
        sa.CheckConstraint("role IN ('lead', 'co')", name=op.f("ck_routing_rules_role")),
        sa.CheckConstraint(f"level IS NULL OR level IN ({_in(LEVELS)})", name=op.f("ck_routing_rules_level")),
        sa.CheckConstraint(
            "(target = 'org_unit') = (org_unit_code IS NOT NULL)", name=op.f("ck_routing_rules_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    seed = sa.table(
        "routing_rules",
        sa.column("source", sa.String),
        sa.column("category", sa.String),
        sa.column("level", sa.String),
        sa.column("target", sa.String),
        sa.column("org_unit_code", sa.String),
        sa.column("role", sa.String),
        sa.column("priority", sa.Integer),
        sa.column("note", sa.Text),
    )
    rows = [
        ("hotline_110", None, "grid", "beat_officer", None, "lead", 10, "110: the beat's officer"),
        ("hotline_110", None, "grid", "aux_police", None, "co", 10, "110: the grid's auxiliary police"),
        *[
            (None, c, "grid", "beat_officer", None, "lead", 20, "public order: the beat's officer")
            for c in PUBLIC_ORDER
        ],
        *[(None, c, "grid", "aux_police", None, "co", 20, "public order: the grid's auxiliary police") for c in PUBLIC_ORDER],
        (None, None, "grid", "grid_worker", None, "lead", 100, "the grid's full-time worker on duty"),
        (None, None, "grid", "village_centre", None, "lead", 200, "no grid worker on duty: the village station"),
        (None, "illegal_construction", None, "org_unit", f"{COUNTY_CODE}-ZHZF", "co", 50,
         "illegal construction: comprehensive law enforcement (urban management)"),
        (None, None, "village", "village_centre", None, "lead", 100, "escalated: the village station"),
        (None, None, "town", "town_centre", None, "lead", 100, "escalated: the town command room"),
        (None, None, "county", "county_centre", None, "lead", 100, "escalated: the county centre"),
    ]  # fmt: skip
    keys = ("source", "category", "level", "target", "org_unit_code", "role", "priority", "note")
    op.bulk_insert(seed, [dict(zip(keys, r, strict=True)) for r in rows])

    op.create_table(
        "incident_supervisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_by", sa.String(100), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_supervisions_incident_id_incidents"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_supervisions")),
    )
    op.create_index("ix_incident_supervisions_incident", "incident_supervisions", ["incident_id"])

    for column in ("dispatched_at", "accepted_at", "on_scene_at", "handled_at", "verified_at"):
        op.add_column("incidents", sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "incidents",
        sa.Column("on_scene_geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
    )
    op.add_column("incidents", sa.Column("closed_level", sa.String(8), nullable=True))
    # The first offer stamps dispatched_at (once per statement, from its inserted rows).
    op.execute("""
        CREATE FUNCTION stamp_incident_dispatched() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE incidents i SET dispatched_at = n.at
            FROM (SELECT incident_id, min(offered_at) AS at FROM new_rows
                  WHERE kind = 'dispatch' GROUP BY incident_id) n
            WHERE i.id = n.incident_id AND i.dispatched_at IS NULL;
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER incident_assignments_dispatched AFTER INSERT ON incident_assignments
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION stamp_incident_dispatched()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS incident_assignments_dispatched ON incident_assignments")
    op.execute("DROP FUNCTION IF EXISTS stamp_incident_dispatched()")
    for column in ("closed_level", "on_scene_geom", "verified_at", "handled_at", "on_scene_at", "accepted_at"):
        op.drop_column("incidents", column)
    op.drop_column("incidents", "dispatched_at")
    op.drop_table("incident_supervisions")
    op.drop_table("routing_rules")
    op.drop_table("incident_assignments")
