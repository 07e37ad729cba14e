"""Short collector pauses in the API workers.

A worker holds large long-lived structures: the lookup trees, cell buckets and unit names of
each generation, plus everything imported at start-up. CPython's full (generation 2) collection
walks all of them, and under mixed traffic those walks took 45-170 ms each, stalling every request
of the worker (lookups answered inline on the event loop among them) for that long.
``gc.freeze()`` moves what exists into a permanent generation that no pass walks, so full passes
only visit what was created since. It is redone after each load of boundary data; the unfreeze
first lets the collector reclaim what an earlier generation's data left behind (one full pass,
at start-up and after publishing, not per request).
"""

from __future__ import annotations

import gc
import time
from threading import Lock, Timer

# Settles are full collections: at most one per this many seconds, whatever triggers them (a
# caller cycling ``as_of`` over many generations makes the lookup cache reload often). One asked
# for sooner runs when the interval is over, from a timer thread, so what was loaded meanwhile is
# frozen too. Objects of requests in flight during a settle are frozen as well; the few that end
# up as cyclic garbage wait for the next settle.
MIN_INTERVAL_S = 30.0

_lock = Lock()
_last = -MIN_INTERVAL_S
_deferred: Timer | None = None


def settle(*, force: bool = False) -> bool:
    """Collect once, then keep everything alive now out of future collector passes. Returns
    whether it ran now; within MIN_INTERVAL_S of the last one (unless forced) it is deferred."""
    global _last, _deferred
    with _lock:
        wait = MIN_INTERVAL_S - (time.monotonic() - _last)
        if not force and wait > 0:
            if _deferred is None:
                _deferred = Timer(wait, _run_deferred)
                _deferred.daemon = True
                _deferred.start()
            return False
        if _deferred is not None:
            _deferred.cancel()
            _deferred = None
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _last = time.monotonic()
        return True


def _run_deferred() -> None:
    global _deferred
    with _lock:
        _deferred = None
    settle(force=True)
