"""One delivery attempt: POST the signed JSON of a delivery row, record the answer in the log.

The row is read in a short transaction, the request is made with no transaction open (a slow
receiver holds no lock and no connection), and the attempt is recorded in a second transaction.
The outcome: 2xx -> ``delivered``; anything else (an HTTP error status, a timeout, a refused
connection) -> ``failed`` with the error, and ``DeliveryFailed`` is raised so that procrastinate
retries the job with exponential back-off (gis.outbound.tasks); the attempt that reaches
``webhook_max_attempts`` ends as ``gave_up`` and the job ends without error.

Idempotent: a row already ``delivered`` or ``gave_up`` is left alone, so a job run again (a worker
killed after the POST, before the job was marked done) does not count an attempt twice, though
the receiver may see the request again: it recognises it by ``X-Gridmap-Delivery``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis.core.db import transaction
from gis.core.settings import Settings, get_settings
from gis.outbound import signing

FINAL = ("delivered", "gave_up")
_READ = sa.text(
    "SELECT d.id, d.status, d.attempts, d.event_type, d.payload, "
    "coalesce(w.url, h.callback_url) AS url, coalesce(w.secret, h.secret) AS secret, "
    "coalesce(w.active, h.active) AS active "
    "FROM webhook_deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id "
    "LEFT JOIN hotline_systems h ON h.code = d.hotline_code WHERE d.id = :id"
)
_RECORD = sa.text("""
    UPDATE webhook_deliveries SET
        attempts = attempts + 1,
        status = CASE WHEN :ok THEN 'delivered' WHEN attempts + 1 >= :max OR :final THEN 'gave_up' ELSE 'failed' END,
        last_status_code = :code, last_error = :error, last_attempt_at = :now,
        delivered_at = CASE WHEN :ok THEN :now END,
        next_attempt_at = CASE WHEN NOT :ok AND NOT :final AND attempts + 1 < :max
                               THEN :now + make_interval(secs => power(:base, attempts + 1)) END
    WHERE id = :id AND status NOT IN ('delivered', 'gave_up')
    RETURNING status, attempts""")
MAX_ERROR = 500


class DeliveryFailed(RuntimeError):
    """An attempt failed and attempts are left: procrastinate retries the job."""


@dataclass(frozen=True)
class Outcome:
    status: str  # the row's status after this attempt (or as found, when nothing was done)
    attempts: int
    code: int | None = None
    error: str | None = None


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> tuple[int | None, str | None]:
    """(HTTP status, error text); the error is None for a 2xx answer."""
    try:
        # Redirects are not followed: the signature is for the configured receiver.
        response = httpx.post(url, content=body, headers=headers, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR] or type(exc).__name__
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"[:MAX_ERROR]


def attempt(engine: Engine, delivery_id: int, settings: Settings | None = None, raise_on_retry: bool = True) -> Outcome:
    """Make one attempt at delivery ``delivery_id`` (see the module docstring)."""
    settings = settings or get_settings()
    with transaction(engine) as session:
        row = session.execute(_READ, {"id": delivery_id}).one_or_none()
    if row is None:  # its webhook was deleted, and its log with it
        return Outcome("missing", 0)
    if row.status in FINAL:
        return Outcome(row.status, row.attempts)
    final = False
    code: int | None = None
    error: str | None
    if not row.active or not row.url:
        error, final = "the receiver is inactive or has no URL", True
    else:
        body = signing.body_bytes(row.payload)
        headers = signing.signed_headers(row.secret or "", body, delivery_id, row.event_type)
        code, error = _post(row.url, body, headers, settings.webhook_timeout_s)
    params: dict[str, Any] = {
        "id": delivery_id,
        "ok": error is None,
        "final": final,
        "max": settings.webhook_max_attempts,
        "base": float(settings.webhook_backoff_base_s),
        "code": code,
        "error": error,
        "now": dt.datetime.now(dt.UTC),
    }
    with transaction(engine) as session:
        recorded = session.execute(_RECORD, params).one_or_none()
    if recorded is None:  # finished by another run meanwhile
        return Outcome("delivered" if error is None else "failed", row.attempts, code, error)
    outcome = Outcome(recorded.status, recorded.attempts, code, error)
    if outcome.status == "failed" and raise_on_retry:
        raise DeliveryFailed(f"delivery {delivery_id} attempt {outcome.attempts}: {error}")
    return outcome


_PRUNE = sa.text(
    "DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'gave_up') "
    "AND coalesce(delivered_at, last_attempt_at, created_at) < :before"
)


def prune_log(conn: Any, keep_days: int, now: dt.datetime | None = None) -> int:
    """Remove finished deliveries older than ``keep_days``; returns how many. Pending and failed
    (still retrying) rows stay whatever their age. The unique key that makes a delivery happen once
    is safe to lose for an old event: the fan-out never reads an event twice once past it."""
    before = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
    return int(conn.execute(_PRUNE, {"before": before}).rowcount or 0)
