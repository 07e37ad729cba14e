"""``gridmap worker``: a procrastinate worker over the configured database, kept alive across
database outages and stopped cleanly by SIGTERM or SIGINT.

procrastinate's worker stops when its connection is lost (its listener fails); this loop opens the
app again and starts a new worker after a pause, so a database restart only delays the jobs (the
queue is in the database: nothing is lost, due jobs run as soon as a worker is back). A signal
cancels the worker, which procrastinate turns into a graceful stop: running jobs may finish (up to
``GRACEFUL_S``), then the worker unregisters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gis.core.settings import Settings, get_settings

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger("gridmap.worker")

GRACEFUL_S = 10.0
RESTART_PAUSE_S = 2.0


def worker_options(settings: Settings, concurrency: int | None = None) -> dict[str, Any]:
    return {
        "concurrency": concurrency or settings.worker_concurrency,
        "name": "gridmap-worker",
        # Scheduled jobs are found by polling (a NOTIFY wakes the worker for jobs due now).
        "fetch_job_polling_interval": settings.job_poll_interval_s,
        "update_heartbeat_interval": settings.job_heartbeat_s,
        "stalled_worker_timeout": settings.job_stalled_after_s,
        "shutdown_graceful_timeout": GRACEFUL_S,
        # Finished jobs are removed: the incident history is the record, and periodic jobs would
        # otherwise pile up (17,000 a day).
        "delete_jobs": "successful",
        "install_signal_handlers": False,  # ours below also end the restart loop
    }


async def run_worker(
    concurrency: int | None = None, settings: Settings | None = None, on_start: Callable[[], None] | None = None
) -> None:
    """Run workers until SIGTERM/SIGINT, starting a new one whenever one stops on an error."""
    from gis.work.jobs import get_app

    settings = settings or get_settings()
    app = get_app()
    options = worker_options(settings, concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            try:
                await _run_once(app, options, stop, on_start)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away (or refused us): start again
                log.warning("worker stopped: %s; starting again in %.0f s", exc, RESTART_PAUSE_S)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESTART_PAUSE_S)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _run_once(
    app: procrastinate.App, options: dict[str, Any], stop: asyncio.Event, on_start: Callable[[], None] | None
) -> None:
    async with app.open_async():
        worker = asyncio.create_task(app.run_worker_async(**options), name="procrastinate worker")
        if on_start is not None:
            on_start()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not worker.done():
            worker.cancel()  # procrastinate: a graceful stop
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            return
        worker.result()  # raises what stopped it
        if not stop.is_set():
            raise RuntimeError("the worker stopped (a side task failed: the database connection, usually)")
