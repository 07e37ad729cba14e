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
from threading import Lock

_lock = Lock()


def settle() -> None:
    """Collect once, then keep everything alive now out of future collector passes."""
    with _lock:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
