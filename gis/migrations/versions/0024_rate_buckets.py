"""Per-key rate-limit buckets in the database, for API replicas on several machines

With ``GRIDMAP_RATE_LIMIT_STORE=database`` every API process, on any machine, counts a key's
requests in this one table (gis.people.rate_buckets) instead of a file mapped by the processes
of one machine (api.rate_limits). UNLOGGED: the counts are worth no WAL and need not survive a
crash or reach a standby; after a failover the buckets start full, which forgives at most one
minute's worth of requests.

Revision ID: 0024
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE UNLOGGED TABLE rate_buckets (
            fingerprint bigint PRIMARY KEY,
            tokens double precision NOT NULL,
            refilled_at timestamptz NOT NULL,
            granted boolean NOT NULL
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE rate_buckets")
