"""Running the simulator against the database, in real time: a tick a second (or ``tick_s``), each
doing what came due (demo.simulator.play). The engine pre-pings its connections and a tick that
fails on the database (restarted, unreachable) is logged and tried again after a back-off: the
simulated clock keeps running, and what was due meanwhile happens at the next good tick (reports
beyond ten ticks' worth are dropped, so a long outage does not end in a burst)."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from typing import Any

from sqlalchemy.exc import DBAPIError

from demo.simulator.play import SimConfig, Simulator, Tally

log = logging.getLogger("gridmap.simulate")


def summary(tally: Tally) -> str:
    steps = ", ".join(f"{k} {v}" for k, v in sorted(tally.steps.items()))
    return f"{tally.reports} reports; {steps or 'no steps yet'}"


def run(
    config: SimConfig,
    *,
    minutes: float | None = None,
    tick_s: float = 1.0,
    stop: threading.Event | None = None,
    report_every_s: float = 60.0,
) -> Tally:
    """Play until ``minutes`` of wall time have passed (None: until ``stop`` is set or SIGTERM)."""
    from gis.core import db
    from gis.core.settings import get_settings

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():

        def _stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
    settings = get_settings()
    engine = db.engine_from_settings(settings)
    start = dt.datetime.now(dt.UTC)
    sim = Simulator(engine.begin, config, start, settings=settings)
    ends = time.monotonic() + minutes * 60 if minutes is not None else None
    next_report = time.monotonic() + report_every_s
    backoff = tick_s
    try:
        while not stop.is_set() and (ends is None or time.monotonic() < ends):
            began = time.monotonic()
            try:
                sim.step(dt.datetime.now(dt.UTC))
                backoff = tick_s
            except DBAPIError as exc:  # the database went away: try again, a little later each time
                log.warning("simulator: database unavailable (%s); retrying in %.0f s", exc.__class__.__name__, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if time.monotonic() >= next_report:
                log.info("simulator: %s", summary(sim.tally))
                next_report += report_every_s
            stop.wait(max(0.0, tick_s - (time.monotonic() - began)))
    finally:
        engine.dispose()
    return sim.tally
