"""the job queue: procrastinate's tables and functions (time-driven work is a job, not a thread)

Deadlines, escalation, reminders and notification delivery run as procrastinate jobs (gis.work).
procrastinate keeps its queue in PostgreSQL: tables, types and functions named ``procrastinate_*``
in the ``public`` schema (it has no option for a schema of its own; its SQL names objects
unqualified). This migration applies the schema that the pinned release (pyproject.toml) ships,
read from the installed package, so the queue is created with every other table (``gridmap db up``,
the tests' scratch databases) and a job row can be written in the same transaction as the incident
whose deadline it carries.

Upgrading procrastinate: pin the new version and add a migration that runs, in order, the files of
the new release's procrastinate/sql/migrations whose version is above 03.10.00 (procrastinate names
them ``<version>_<nn>_<what>.sql``; ``pre`` files before deploying the new code, ``post`` after).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import importlib.metadata

from alembic import op
from procrastinate.schema import SchemaManager

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The release whose schema this revision creates; a later release comes with a migration of its own.
PINNED = "3.10.0"


def upgrade() -> None:
    # The file is many statements with PL/pgSQL bodies: sent as it is through the driver (psycopg
    # sends a parameterless query as one simple query, several statements allowed), inside
    # alembic's transaction, rather than through sa.text (which would read ":name" as parameters).
    installed = importlib.metadata.version("procrastinate")
    if installed != PINNED:
        raise RuntimeError(
            f"migration 0014 creates procrastinate {PINNED}'s queue, but {installed} is installed: "
            "install the version pinned in pyproject.toml"
        )
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    driver.execute(SchemaManager.get_schema())


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
            procrastinate_workers CASCADE;
        DO $$
        DECLARE f regprocedure;
        BEGIN
            FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate\\_%'
            LOOP
                EXECUTE 'DROP FUNCTION ' || f;
            END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_status, procrastinate_job_event_type;
        """
    )
