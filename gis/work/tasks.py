"""The job bodies. Each is idempotent: running it again (a retry after a worker died mid-job, a
duplicate) changes nothing, because it acts only on the state it was scheduled for and does all
its writes in one transaction (a worker killed mid-job leaves nothing half-done).

* ``incident_deadline``: an incident's handling deadline; escalates it one level if it is still
  pending at the level the deadline belongs to and the deadline has passed (the escalation also
  schedules the next level's deadline job, gis.incidents.workflow).
* ``offer_deadline``: an offer's acceptance deadline; an offer still not accepted is withdrawn and
  its incident escalates to the next level's centre (gis.dispatch.deadlines).
* ``escalation_sweep`` (every minute): escalates every overdue incident, including those that never
  had a job (bulk imports, rows written before the queue existed), so nothing is lost, and gives
  the pending incidents without a deadline job theirs.
* ``retry_stalled_jobs`` (every 5 s): a worker that stopped sending heartbeats (killed, its machine
  gone) leaves its running jobs in ``doing``; they are put back in the queue for another worker.
"""

from __future__ import annotations

import functools
import logging

import procrastinate
from sqlalchemy.engine import Engine

from gis.core.settings import get_settings
from gis.work.jobs import DEADLINE_QUEUE, schedule_missing_deadlines

log = logging.getLogger("gridmap.jobs")

blueprint = procrastinate.Blueprint()

# A body that failed (the database went away, a deadlock) is tried again; the sweep still covers an
# incident whose job gave up.
_RETRY = procrastinate.RetryStrategy(max_attempts=20, wait=3)
PERIODIC_QUEUE = "periodic"


@functools.cache
def _engine() -> Engine:
    """This worker process's engine; pre-ping so that it outlives a database restart."""
    from gis.core.db import database_url, make_engine

    settings = get_settings()
    return make_engine(database_url(settings), pool_size=settings.worker_concurrency, max_overflow=2)


@blueprint.task(name="incident_deadline", queue=DEADLINE_QUEUE, retry=_RETRY)
def incident_deadline(incident_id: int, level: str = "grid") -> bool:
    """The deadline of ``incident_id`` at escalation ``level`` has come."""
    from gis.core.db import transaction
    from gis.incidents.workflow import escalate_if_overdue

    with transaction(_engine()) as session:
        moved = escalate_if_overdue(session, incident_id, level)
    if moved:
        log.info("incident %d escalated from %s: deadline passed", incident_id, level)
    return moved


@blueprint.task(name="offer_deadline", queue=DEADLINE_QUEUE, retry=_RETRY)
def offer_deadline(assignment_id: int) -> bool:
    """The acceptance deadline of offer ``assignment_id`` has come: an offer still open is
    withdrawn and its incident goes a level up, to that level's centre (gis.dispatch.deadlines)."""
    from gis.core.db import transaction
    from gis.dispatch.deadlines import expire_offer

    with transaction(_engine()) as session:
        expired = expire_offer(session, assignment_id)
    if expired:
        log.info("offer %d expired unaccepted: escalated", assignment_id)
    return expired


@blueprint.task(name="supervision_due", queue=DEADLINE_QUEUE, retry=_RETRY)
def supervision_due(supervision_id: int) -> bool:
    """A supervision order's due date: without a reply, the holders are reminded (gis.dispatch.deadlines)."""
    from gis.core.db import transaction
    from gis.dispatch import deadlines

    with transaction(_engine()) as session:
        return deadlines.supervision_due(session, supervision_id)


@blueprint.periodic(cron="* * * * *", periodic_id="escalation-sweep")
@blueprint.task(name="escalation_sweep", queue=PERIODIC_QUEUE, queueing_lock="escalation_sweep", retry=_RETRY)
def escalation_sweep(timestamp: int) -> int:
    """Escalate every overdue incident (one level each), and schedule the deadline jobs that are
    missing; advisory locks let one process at a time do each."""
    from gis.core.db import transaction
    from gis.incidents.workflow import escalate_overdue

    with transaction(_engine()) as session:
        moved = escalate_overdue(session)
        scheduled = schedule_missing_deadlines(session)
    if moved or scheduled:
        log.info("sweep: %d overdue incidents escalated, %d deadlines without a job scheduled", moved, scheduled)
    return moved


@blueprint.periodic(cron="* * * * * */5", periodic_id="stalled-jobs")
@blueprint.task(name="retry_stalled_jobs", queue=PERIODIC_QUEUE, queueing_lock="retry_stalled_jobs", pass_context=True)
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> int:
    """Put the running jobs of dead workers back in the queue; returns how many."""
    manager = context.app.job_manager
    retried = 0
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=get_settings().job_stalled_after_s)
    for job in stalled:
        try:
            await manager.retry_job(job)
        except procrastinate.exceptions.ConnectorException:  # finished (or retried) meanwhile
            continue
        retried += 1
        log.warning("job %s (%s) of a dead worker is retried", job.id, job.call_string)
    return retried


@blueprint.task(name="hazard_deadline", queue=DEADLINE_QUEUE, retry=_RETRY)
def hazard_deadline(hazard_id: int, level: str = "grid") -> bool:
    """The rectification (or escalated) deadline of ``hazard_id`` at escalation ``level`` has come:
    overdue and one level up, unless it has moved on meanwhile (gis.fieldwork.overdue)."""
    from gis.core.db import transaction
    from gis.fieldwork.overdue import mark_overdue

    with transaction(_engine()) as session:
        moved = mark_overdue(session, hazard_id, level)
    if moved:
        log.info("hazard %d overdue, escalated from %s", hazard_id, level)
    return moved


@blueprint.periodic(cron="* * * * *", periodic_id="hazard-sweep")
@blueprint.task(name="hazard_sweep", queue=PERIODIC_QUEUE, queueing_lock="hazard_sweep", retry=_RETRY)
def hazard_sweep(timestamp: int) -> int:
    """Mark every hazard past its due time overdue, those without a job too (bulk imports)."""
    from gis.core.db import transaction
    from gis.fieldwork.overdue import sweep

    with transaction(_engine()) as session:
        moved = sweep(session)
    if moved:
        log.info("sweep: %d hazards overdue", moved)
    return moved


REDISTRICT_QUEUE = "analysis"
REDISTRICT_TASK = "gridmap:redistrict"


@blueprint.task(name="redistrict", queue=REDISTRICT_QUEUE)
def redistrict(run_id: int) -> str:
    """Build the redistricting proposal of ``run_id`` (gis.analysis.proposal). Progress is written
    in short transactions of its own so that GET /analysis/redistrict/{id} sees it while the job
    runs; the draft and the final state commit together. Not retried: a failure is reported on the
    run, and the planner asks again."""
    from gis.analysis import proposal
    from gis.core.db import transaction

    engine = _engine()

    def progress(fraction: float, message: str) -> None:
        with engine.begin() as conn:
            proposal.set_run(conn, run_id, progress=round(min(max(fraction, 0.0), 0.99), 3), message=message)

    with engine.begin() as conn:
        run = proposal.get_run(conn, run_id)
        if run is None or run["status"] not in ("queued", "running"):
            return "skipped"  # finished already
        # "running": a worker died in the middle (its transaction rolled back, nothing was written)
        # and retry_stalled_jobs put the job back; the job's lock keeps two of one run apart.
        proposal.set_run(conn, run_id, status="running", started_at=proposal.now(), message="started")
    try:
        with transaction(engine) as session:
            status = proposal.execute_run(session, run_id, proposal.params_from(run["params"]), progress)
    except Exception as exc:
        with engine.begin() as conn:
            proposal.set_run(conn, run_id, status="failed", message=f"{type(exc).__name__}: {exc}"[:2000],
                             finished_at=proposal.now())  # fmt: skip
        log.exception("redistricting run %d failed", run_id)
        raise
    log.info("redistricting run %d: %s", run_id, status)
    return status
