"""routing rules choose the nearest on-duty worker (``routing_rules.pick``); no NOTIFY per event statement

``pick`` says how a lead rule chooses among several on-duty holders of its target: ``first`` (the
smallest person id, as before) or ``nearest`` (the holder whose latest patrol GPS point, no older
than ``GRIDMAP_POSITION_RECENT_S``, lies nearest the incident; nobody with a recent point: as
``first``). Only person targets (grid_worker, aux_police, beat_officer) of lead rules choose;
the check keeps the data from saying otherwise.

The ``NOTIFY gridmap_events`` trigger of migration 0015 is dropped: a transaction that notifies
takes the cluster's notification-queue lock at commit, held through its WAL flush, so every intake
committed one at a time. The SSE hub reads the log by id every 100 ms instead (gis.work.eventhub).

Revision ID: 0028
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("routing_rules", sa.Column("pick", sa.String(8), server_default="first", nullable=False))
    op.create_check_constraint(
        op.f("ck_routing_rules_pick"),
        "routing_rules",
        "pick = 'first' OR (pick = 'nearest' AND role = 'lead' "
        "AND target IN ('grid_worker', 'aux_police', 'beat_officer'))",
    )

    op.execute("DROP TRIGGER IF EXISTS incident_events_notify ON incident_events")
    op.execute("DROP FUNCTION IF EXISTS notify_incident_events()")


def downgrade() -> None:
    # Migration 0015's trigger, as it was.
    op.execute("""
        CREATE FUNCTION notify_incident_events() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            last_id bigint;
        BEGIN
            SELECT max(id) INTO last_id FROM new_events;
            IF last_id IS NOT NULL THEN
                PERFORM pg_notify('gridmap_events', last_id::text);
            END IF;
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER incident_events_notify AFTER INSERT ON incident_events
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION notify_incident_events()
    """)
    op.drop_constraint(op.f("ck_routing_rules_pick"), "routing_rules", type_="check")
    op.drop_column("routing_rules", "pick")
