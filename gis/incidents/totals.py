"""Totals for paged listings: exact and fresh when small, counted at most a few seconds ago when large.

A listing page says how many rows match its filters. Counting is cheap for a grid's incidents
(an index range of a few thousand entries) but an unfiltered count walks every row of the year:
about 30 ms of wall time and 70 ms of CPU over three processes on the demo's 283,000 incidents,
which on a 2-core machine stalls every other request for that long. Command-centre screens poll
the same listing again and again, so every poll paid it.

So a total is first counted up to ``exact_up_to`` (a bounded scan). Below that it is exact and
read in the caller's own transaction. Above it, the full count is reused for ``ttl_s`` seconds
by every caller with the same filters in this process: a total of hundreds of thousands that
lags the newest reports by a few seconds. The page's rows themselves are always fresh. A large
total counted inside a transaction that later rolls back (a bulk import) may be served for those
few seconds too: the same small lag, in the other direction.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.spatial.areas import Conn

EXACT_UP_TO = 10_000
TTL_S = 5.0
MAX_ENTRIES = 256


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


class TotalCounter:
    """Counts ``SELECT count(*) FROM <from_where>``; thread-safe. The API owns one
    (``app.state.totals``), shared by its requests."""

    def __init__(self, exact_up_to: int = EXACT_UP_TO, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES):
        self.exact_up_to = exact_up_to
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[Any, ...], tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, conn: Conn, from_where: str, params: dict[str, Any]) -> int:
        """``from_where`` is trusted SQL (``table alias WHERE ...``) with values as bound ``params``."""
        capped = conn.execute(
            sa.text(f"SELECT count(*) FROM (SELECT 1 FROM {from_where} LIMIT :_cap) AS capped"),  # noqa: S608
            {**params, "_cap": self.exact_up_to + 1},
        ).scalar_one()
        if capped <= self.exact_up_to:
            return int(capped)
        bind = conn.get_bind() if isinstance(conn, Session) else conn
        key = (str(bind.engine.url), from_where, tuple(sorted((k, _frozen(v)) for k, v in params.items())))
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                self._cache.move_to_end(key)
                return hit[1]
        total = int(conn.execute(sa.text(f"SELECT count(*) FROM {from_where}"), params).scalar_one())  # noqa: S608
        with self._lock:
            self._cache[key] = (now, total)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return total
