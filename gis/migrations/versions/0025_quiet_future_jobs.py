"""procrastinate's job NOTIFY only for jobs due now, not for jobs scheduled in the future

procrastinate's trigger sends two notifications (its queue's channel and the any-queue channel)
for every job inserted as ``todo``, to wake a worker at once. Intake writes two future jobs per
report (the handling deadline, hours away, and the lead offer's acceptance deadline, minutes
away): waking the workers for them finds nothing to do, since the worker polls for due jobs every
``GRIDMAP_JOB_POLL_INTERVAL_S`` anyway, and each notification is work in the committing
transaction. The trigger keeps firing for jobs due now (notifications, retries, the redistricting
job); a future job is found by the poll within a second of its time. Upgrading procrastinate must
keep this condition if its migrations recreate the trigger (README, Jobs).

Revision ID: 0025
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0023"
branch_labels = None
depends_on = None

_TRIGGER = "procrastinate_jobs_notify_queue_job_inserted_v1"
_CREATE = (
    f"CREATE TRIGGER {_TRIGGER} AFTER INSERT ON procrastinate_jobs FOR EACH ROW "
    "WHEN ({when}) EXECUTE FUNCTION procrastinate_notify_queue_job_inserted_v1()"
)


def upgrade() -> None:
    op.execute(f"DROP TRIGGER {_TRIGGER} ON procrastinate_jobs")
    when = "new.status = 'todo'::procrastinate_job_status AND (new.scheduled_at IS NULL OR new.scheduled_at <= now())"
    op.execute(_CREATE.format(when=when))


def downgrade() -> None:
    op.execute(f"DROP TRIGGER {_TRIGGER} ON procrastinate_jobs")
    op.execute(_CREATE.format(when="new.status = 'todo'::procrastinate_job_status"))
