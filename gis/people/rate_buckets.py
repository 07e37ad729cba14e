"""Per-key token buckets in the database (table ``rate_buckets``), shared by every API process on
every machine serving it: the rate-limit store for API replicas (``GRIDMAP_RATE_LIMIT_STORE=database``).

The default store (api.rate_limits.SharedBuckets) is a file mapped by the API processes of one
machine, a few microseconds a request; replicas on several machines would each count a key
separately. Here a take is one statement (an upsert on the key's row, which also serialises
concurrent takes of one key) on the primary, about a round trip a request.

The buckets behave as the file's do: up to ``limit`` tokens, refilled at ``limit`` a minute,
times from the database's clock (one clock for every replica). When the database cannot be
reached, counting falls back to this process alone until it can again: a database outage is
answered 503 by the requests that need the database, and the lookups that do not are still
limited, per process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# The tokens available now (the old count plus the refill since) are computed once, in the
# sub-select; a token is taken when at least one is there.
_TAKE = sa.text("""
    INSERT INTO rate_buckets AS b (fingerprint, tokens, refilled_at, granted)
    VALUES (:fp, :limit - 1, now(), true)
    ON CONFLICT (fingerprint) DO UPDATE SET (tokens, granted, refilled_at) = (
        SELECT CASE WHEN avail >= 1 THEN avail - 1 ELSE avail END, avail >= 1, now()
        FROM (SELECT least(:limit, b.tokens + greatest(0, extract(epoch FROM now() - b.refilled_at)::float8) * :rate)
              AS avail) AS refilled
    )
    RETURNING granted, tokens
""")
_REFUND = sa.text("UPDATE rate_buckets SET tokens = least(:limit, tokens + 1) WHERE fingerprint = :fp")
_RETRY_AFTER_OUTAGE_S = 5.0


class Buckets(Protocol):
    def take(self, key: int, limit: int) -> float: ...

    def refund(self, key: int, limit: int) -> None: ...

    def reset(self) -> None: ...


def _signed(key: int) -> int:
    """The 64-bit fingerprint as a bigint."""
    return key - (1 << 64) if key >= 1 << 63 else key


class DatabaseBuckets:
    """``take``/``refund``/``reset`` as api.rate_limits' buckets, counted in ``rate_buckets``."""

    def __init__(self, engine: Engine, fallback: Buckets) -> None:
        self.engine = engine
        self.fallback = fallback  # counts while the database is away
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _away(self, exc: DBAPIError) -> None:
        with self._lock:
            if self._down_until < time.monotonic():
                log.warning("rate limits counted per process for a while: the database is away (%s)", exc.__class__)
            self._down_until = time.monotonic() + _RETRY_AFTER_OUTAGE_S

    def take(self, key: int, limit: int) -> float:
        if self._down_until > time.monotonic():
            return self.fallback.take(key, limit)
        try:
            with self.engine.connect() as conn:
                granted, tokens = conn.execute(
                    _TAKE, {"fp": _signed(key), "limit": float(limit), "rate": limit / 60}
                ).one()
                conn.commit()
        except DBAPIError as exc:
            self._away(exc)
            return self.fallback.take(key, limit)
        return 0.0 if granted else (1.0 - float(tokens)) / (limit / 60.0)

    def refund(self, key: int, limit: int) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(_REFUND, {"fp": _signed(key), "limit": float(limit)})
        except DBAPIError as exc:
            self._away(exc)

    def reset(self) -> None:
        """Forget every count (tests)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM rate_buckets"))
        self.fallback.reset()
