"""Public channels: residents' tickets (居民上报), their ratings (满意度评价), photos, Open311 tokens

A resident's report is an incident like any other (gis.incidents.intake); what the public channels
add is kept beside it, never in ``incidents``:

* ``public_tickets``: the ticket number a resident keeps (human-friendly, unique), the hash of the
  tracking token (the token itself is shown once and never stored), the incident it belongs to
  (several tickets share one incident when duplicate reports are merged), the device id and IP
  the abuse controls counted, the optional phone, the channel (the resident page or Open311) and,
  for Open311 posts, the spec's token that ``tokens/{token}`` turns into the service_request_id.
* ``public_ratings``: one rating per ticket (satisfied, basically satisfied, dissatisfied) with a
  note; the satisfaction figures are read from here.
* ``public_photos``: photos checked by content (gis.channels.photos), until the generic attachments
  table takes them over.

Revision ID: 0021
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE public_tickets (
            id bigserial PRIMARY KEY,
            ticket text NOT NULL UNIQUE,
            token_hash bytea NOT NULL,
            incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
            merged boolean NOT NULL DEFAULT false,
            channel text NOT NULL DEFAULT 'web' CHECK (channel IN ('web', 'open311')),
            device_id text,
            ip inet,
            phone text,
            lang text NOT NULL DEFAULT 'zh' CHECK (lang IN ('zh', 'en')),
            open311_token text UNIQUE,
            media_url text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX public_tickets_incident ON public_tickets (incident_id);
        CREATE INDEX public_tickets_created ON public_tickets (created_at);

        CREATE TABLE public_ratings (
            ticket_id bigint PRIMARY KEY REFERENCES public_tickets (id) ON DELETE CASCADE,
            incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
            rating text NOT NULL CHECK (rating IN ('satisfied', 'basically_satisfied', 'dissatisfied')),
            note text,
            reopened boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX public_ratings_incident ON public_ratings (incident_id);

        CREATE TABLE public_photos (
            id bigserial PRIMARY KEY,
            ticket_id bigint NOT NULL REFERENCES public_tickets (id) ON DELETE CASCADE,
            sha256 text NOT NULL,
            mime text NOT NULL,
            width integer NOT NULL,
            height integer NOT NULL,
            content bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX public_photos_ticket ON public_photos (ticket_id);
    """)


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS public_photos; DROP TABLE IF EXISTS public_ratings; DROP TABLE IF EXISTS public_tickets;"
    )
