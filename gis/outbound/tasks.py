"""The outbound jobs, in a blueprint of their own (added to the app by gis.work.jobs.get_app).

* ``outbound_fanout`` (every 2 s): new incident events -> delivery rows and delivery jobs
  (gis.outbound.fanout; exactly once by the cursor's row lock and the log's unique keys).
* ``outbound_prune`` (daily): the delivery log keeps finished deliveries ``webhook_log_days``.
* ``deliver``: one attempt at one delivery (gis.outbound.deliver), retried by procrastinate with
  exponential back-off (``webhook_backoff_base_s ** k`` seconds before retry k) until the log
  says delivered or gave_up. Its lock is per receiver and incident (gis.outbound.fanout).
"""

from __future__ import annotations

import functools
import logging

import procrastinate
from sqlalchemy.engine import Engine

from gis.core.settings import get_settings
from gis.outbound.fanout import OUTBOUND_QUEUE

log = logging.getLogger("gridmap.outbound")

blueprint = procrastinate.Blueprint()
PERIODIC_QUEUE = "periodic"

_settings = get_settings()
# The log counts the attempts and decides when to give up; procrastinate's own limit is a margin
# above it, for runs that failed before they could record anything (the database away).
DELIVERY_RETRY = procrastinate.RetryStrategy(
    max_attempts=_settings.webhook_max_attempts + 3, exponential_wait=_settings.webhook_backoff_base_s
)
_FANOUT_RETRY = procrastinate.RetryStrategy(max_attempts=5, wait=2)


@functools.cache
def _engine() -> Engine:
    """This worker process's engine for outbound work; pre-ping so it outlives a database restart."""
    from gis.core.db import database_url, make_engine

    settings = get_settings()
    return make_engine(database_url(settings), pool_size=settings.worker_concurrency, max_overflow=2)


@blueprint.periodic(cron="* * * * * */2", periodic_id="outbound-fanout")
@blueprint.task(name="outbound_fanout", queue=PERIODIC_QUEUE, queueing_lock="outbound_fanout", retry=_FANOUT_RETRY)
def outbound_fanout(timestamp: int) -> int:
    """Queue the deliveries of the events committed since the last run; returns how many."""
    from gis.core.db import transaction
    from gis.outbound.fanout import fan_out_all

    engine = _engine()
    result = fan_out_all(lambda: transaction(engine))
    if result.queued:
        log.info("fan-out: %d events read, %d deliveries queued", result.events, result.queued)
    return result.queued


@blueprint.task(name="deliver", queue=OUTBOUND_QUEUE, retry=DELIVERY_RETRY)
def deliver(delivery_id: int) -> str:
    """One attempt at delivery ``delivery_id``; raises (to be retried) while attempts are left."""
    from gis.outbound.deliver import attempt

    outcome = attempt(_engine(), delivery_id)
    if outcome.status == "gave_up":
        log.warning("delivery %d gave up after %d attempts: %s", delivery_id, outcome.attempts, outcome.error)
    return outcome.status


@blueprint.periodic(cron="17 3 * * *", periodic_id="outbound-prune")
@blueprint.task(name="outbound_prune", queue=PERIODIC_QUEUE, queueing_lock="outbound_prune", retry=_FANOUT_RETRY)
def outbound_prune(timestamp: int) -> int:
    """Remove finished deliveries older than the log keeps them (at 03:17, a quiet hour)."""
    from gis.core.db import transaction
    from gis.outbound.deliver import prune_log

    with transaction(_engine()) as session:
        removed = prune_log(session, get_settings().webhook_log_days)
    if removed:
        log.info("delivery log: %d finished deliveries removed", removed)
    return removed
