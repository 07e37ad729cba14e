"""NOTIFY gridmap_events when incident events are committed (the live push, GET /events)

A statement-level trigger on ``incident_events`` sends the largest new event id on the
``gridmap_events`` channel. PostgreSQL delivers a notification only when (and if) the transaction
commits, so listeners hear about committed facts only, and one NOTIFY per statement keeps the
one-statement intake (gis.incidents.intake) at one notification a report whatever it inserts.
The payload is only the id: every listener reads the log (``incident_events``) after its own last
id, so catching up after a reconnect and following live are the same read (gis.work.events).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The channel is a frozen copy of gis.core.vocab.EVENTS_CHANNEL.


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION notify_incident_events() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            last_id bigint;
        BEGIN
            SELECT max(id) INTO last_id FROM new_events;
            -- An intake replay inserts no event; it has nothing to announce.
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


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS incident_events_notify ON incident_events")
    op.execute("DROP FUNCTION IF EXISTS notify_incident_events()")
