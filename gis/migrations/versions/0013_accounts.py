"""accounts own API keys and carry the role and the scope

An account (accounts) belongs to a person or an organisation unit, or to neither (a system or an
integration); it has a role and a scope: area codes whose data its keys may read and write
(gis.people.scope; empty = the whole county, ``{lookup}`` = coordinate lookups only). API keys
belong to an account (api_keys.account_id). Each existing key gets an account of its own with
the key's name and role and the whole county, so it keeps what it could do.

incidents gain an index on (town_code, reported_at, id): a town-scoped listing selects on the
town and reads it newest first (page 20 of a town: 0.5 ms, as the whole county's, against 1.7 ms
filtering the time index), and one on the open incidents' town_code and report time: the command
centre's open listing of a town-scoped key otherwise ANDs the town's whole bitmap (a ninth of the
county) with the open ones (measured on the demo: 8.6 ms against 0.7 ms a query).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Frozen copy of gis.core.vocab.ROLES at this revision.
ROLES = ("viewer", "reporter", "dispatcher", "planner", "admin")
# Frozen copy of gis.core.predicates.is_open at this revision, written in the form PostgreSQL prints
# back unchanged (as ix_incidents_open_geom, 0009), so that the bulk importer's index rebuild, which
# re-creates an index from its printed definition, gives the same index.
OPEN = (
    "status::text = ANY (ARRAY['reported'::text, 'accepted'::text, 'dispatched'::text, "
    "'in_progress'::text, 'handled'::text, 'verified'::text])"
)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")", name=op.f("ck_accounts_role")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_accounts_person_id_people")),
        sa.ForeignKeyConstraint(["org_unit_id"], ["org_units.id"], name=op.f("fk_accounts_org_unit_id_org_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_index("ix_accounts_person", "accounts", ["person_id"])
    op.create_index("ix_accounts_org_unit", "accounts", ["org_unit_id"])
    op.add_column("api_keys", sa.Column("account_id", sa.Integer(), nullable=True))
    # One account per existing key (the key's id is borrowed to pair them, then the sequence moves on).
    op.execute(
        "INSERT INTO accounts (id, name, role, created_at) SELECT id, name, role, created_at FROM api_keys ORDER BY id"
    )
    op.execute("UPDATE api_keys SET account_id = id")
    op.execute(
        "SELECT setval(pg_get_serial_sequence('accounts', 'id'), coalesce((SELECT max(id) FROM accounts), 0) + 1, false)"
    )
    op.alter_column("api_keys", "account_id", nullable=False)
    op.create_foreign_key(op.f("fk_api_keys_account_id_accounts"), "api_keys", "accounts", ["account_id"], ["id"])
    op.create_index("ix_api_keys_account", "api_keys", ["account_id"])
    op.create_index("ix_incidents_town", "incidents", ["town_code", "reported_at", "id"])
    op.create_index("ix_incidents_open_town", "incidents", ["town_code", "reported_at"], postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index("ix_incidents_open_town", table_name="incidents")
    op.drop_index("ix_incidents_town", table_name="incidents")
    # The keys keep their account's role (it may have been changed on the account).
    op.execute("UPDATE api_keys k SET role = a.role FROM accounts a WHERE a.id = k.account_id")
    op.drop_index("ix_api_keys_account", table_name="api_keys")
    op.drop_constraint(op.f("fk_api_keys_account_id_accounts"), "api_keys", type_="foreignkey")
    op.drop_column("api_keys", "account_id")
    op.drop_index("ix_accounts_org_unit", table_name="accounts")
    op.drop_index("ix_accounts_person", table_name="accounts")
    op.drop_table("accounts")
