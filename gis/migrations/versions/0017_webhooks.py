"""outbound webhooks, their delivery log, and the 12345 / 110 hotline adapters

* ``webhooks``: an HTTP receiver of an organisation unit (DingTalk, Zhejiang government messaging,
  any URL) that gets the incident events inside the unit's area, signed with its ``secret``
  (HMAC-SHA256); ``events`` lists the event types or actions it wants (empty: all).
* ``hotline_systems``: the 12345 and 110 systems that send incidents in (POST /hotlines/{code}/incidents)
  and get status callbacks at ``callback_url`` (none until an admin sets it). The link of an incident
  to the hotline's own ticket is the incident's ``(source, external_id)`` pair, which intake already
  stores and keeps unique (source ``hotline_<code>``): no second link table to keep in step.
* ``hotline_category_map``: a hotline's category code -> gridmap's category, editable by admins.
* ``webhook_deliveries``: the delivery log. One row per (receiver, event), for a webhook or a
  hotline's callback URL (exactly one of the two), unique per receiver and event so that an event
  is delivered once however often the fan-out runs; status pending -> delivered | failed (retrying)
  -> gave_up, with the attempts and the last answer.
* ``outbound_cursor``: how far the fan-out has read the event log (one row), with the ids it saw
  missing (inserted but not yet committed), which it asks for again for a while. It starts at the
  end of the log: history before this revision is not sent.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# Frozen copies of gis.core.vocab at this revision.
DELIVERY_STATUSES = ("pending", "delivered", "failed", "gave_up")
HOTLINES = {"12345": "12345政务服务热线", "110": "110报警服务台"}


def _in(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    now = sa.text("now()")
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("events", pg.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"], ["org_units.id"], name=op.f("fk_webhooks_org_unit_id_org_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_org_unit", "webhooks", ["org_unit_id"])
    op.create_table(
        "hotline_systems",
        sa.Column("code", sa.String(8), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint(f"code IN ({_in(list(HOTLINES))})", name=op.f("ck_hotline_systems_code")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_hotline_systems")),
    )
    op.bulk_insert(
        sa.table("hotline_systems", sa.column("code", sa.String), sa.column("name", sa.Text)),
        [{"code": code, "name": name} for code, name in HOTLINES.items()],
    )
    op.create_table(
        "hotline_category_map",
        sa.Column("hotline_code", sa.String(8), nullable=False),
        sa.Column("their_code", sa.String(32), nullable=False),
        sa.Column("their_name", sa.Text(), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.ForeignKeyConstraint(
            ["hotline_code"],
            ["hotline_systems.code"],
            name=op.f("fk_hotline_category_map_hotline_code_hotline_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("hotline_code", "their_code", name=op.f("pk_hotline_category_map")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("webhook_id", sa.BigInteger(), nullable=True),
        sa.Column("hotline_code", sa.String(8), nullable=True),
        # No foreign key to the event: the log outlives a deleted incident.
        sa.Column("event_id", sa.BigInteger(), nullable=True),  # NULL for a test ping
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("payload", pg.JSONB(), nullable=False),
        sa.Column("status", sa.String(12), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({_in(DELIVERY_STATUSES)})", name=op.f("ck_webhook_deliveries_status")),
        sa.CheckConstraint("num_nonnulls(webhook_id, hotline_code) = 1", name=op.f("ck_webhook_deliveries_target")),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.id"], name=op.f("fk_webhook_deliveries_webhook_id_webhooks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["hotline_code"],
            ["hotline_systems.code"],
            name=op.f("fk_webhook_deliveries_hotline_code_hotline_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        # An event is delivered once to each receiver (NULL event ids, the pings, never conflict).
        sa.UniqueConstraint("webhook_id", "event_id", name=op.f("uq_webhook_deliveries_webhook_event")),
        sa.UniqueConstraint("hotline_code", "event_id", name=op.f("uq_webhook_deliveries_hotline_event")),
    )
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "id"])
    op.create_index("ix_webhook_deliveries_hotline", "webhook_deliveries", ["hotline_code", "id"])
    op.create_table(
        "outbound_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("gaps", pg.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_outbound_cursor_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_cursor")),
    )
    op.execute("INSERT INTO outbound_cursor (id, last_event_id) SELECT 1, coalesce(max(id), 0) FROM incident_events")


def downgrade() -> None:
    op.drop_table("outbound_cursor")
    op.drop_index("ix_webhook_deliveries_hotline", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_webhook", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("hotline_category_map")
    op.drop_table("hotline_systems")
    op.drop_index("ix_webhooks_org_unit", table_name="webhooks")
    op.drop_table("webhooks")
