"""Admission of API keys (the one path every request takes) and role checks, as typed dependencies.

Roles are ordered viewer < reporter < dispatcher < planner < admin; an endpoint names the least
role it needs. A key comes in ``X-API-Key``, ``Authorization: Bearer`` or ``?key=`` (browsers
and desktop GIS cannot always send headers), in that order of precedence. Whichever way it
comes, it goes through the app's one ``Admission``: the same short cache of verified keys (hot
endpoints do not query the key table on every request), the same per-key rate limit, the same
audit of refusals. The routes, the map pages and their data, OGC, tiles, exports and the fast
paths (api.fastpath) all use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from threading import Lock
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from api.deps import request_session
from api.rate_limits import LocalBuckets, SharedBuckets, fingerprint, table_path
from gis.core.privacy import ROLE_RANK
from gis.people.keys import Principal, verify_key
from gis.people.rate_buckets import DatabaseBuckets
from gis.spatial.areas import Conn

log = logging.getLogger(__name__)
# Refused keys are audited here (a log, not the audit table: a flood of bad keys must not become
# a flood of writes). At most one line per key and reason every CACHE_SECONDS per worker.
audit_log = logging.getLogger("gridmap.audit.auth")
CACHE_SECONDS = 5.0
MAX_CACHED = 10_000

# When auth is disabled (a setting for closed test benches) every caller acts as this principal.
ANONYMOUS_ADMIN = Principal(0, "anonymous", "admin")


def presented_key(headers: Mapping[str, str], query_key: str | None = None) -> str | None:
    """The key a request presents: a non-empty X-API-Key, else a Bearer token, else ``?key=``."""
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
        if token:
            return token
    return query_key or None


def presents_a_key(headers: Mapping[str, str], query_key: str | None = None) -> bool:
    """Whether the request tries to authenticate at all (any non-empty X-API-Key or
    Authorization header or ``?key=``, usable or not): such a request is never treated as keyless."""
    return bool(headers.get("x-api-key") or headers.get("authorization") or query_key)


def _key_label(key: str) -> str:
    """What the audit may say about a key: its public prefix, never the secret."""
    parts = key.split("_", 2)
    return f"gm_{parts[1][:16]}" if len(parts) == 3 and parts[0] == "gm" else "(not a gridmap key)"


class Admission:
    """The app's key cache, rate-limit buckets and refusal audit (``app.state.admission``)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = Lock()
        self._fingerprints: dict[Principal, int] = {}
        self._audited: dict[tuple[int, str], float] = {}
        self.limiter: LocalBuckets | SharedBuckets | DatabaseBuckets = LocalBuckets()

    # --- the key cache ---------------------------------------------------------------------

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(found, principal) from the short key cache, without touching the database."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def verify(self, conn: Conn, key: str) -> Principal | None:
        """The key's principal from the database (None: unknown or revoked), remembered briefly."""
        principal = verify_key(conn, key)
        with self._lock:
            if len(self._cache) > MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + CACHE_SECONDS, principal)
        return principal

    def clear(self) -> None:
        """Forget every cached key and every count (tests; revoking takes effect at once)."""
        with self._lock:
            self._cache.clear()
            self._audited.clear()
        self.limiter.reset()

    # --- the rate limit --------------------------------------------------------------------

    def share_limits(self, var_dir: Path, database: str) -> None:
        """Count rate limits in the table every worker serving ``database`` maps (api.rate_limits),
        instead of in this process alone. A folder that cannot hold the table leaves them per process."""
        path = table_path(var_dir, database)
        if isinstance(self.limiter, SharedBuckets) and self.limiter.path == path:
            return
        try:
            self.limiter = SharedBuckets(path)
        except OSError as exc:
            log.warning("rate limits are counted per worker: %s is not usable (%s)", path, exc)

    def share_limits_in_database(self, engine: Engine) -> None:
        """Count rate limits in the database (gis.people.rate_buckets): API replicas on several
        machines then share them."""
        if not isinstance(self.limiter, DatabaseBuckets):
            self.limiter = DatabaseBuckets(engine, LocalBuckets())

    def _fingerprint(self, principal: Principal) -> int:
        fp = self._fingerprints.get(principal)
        if fp is None:
            if len(self._fingerprints) > MAX_CACHED:
                self._fingerprints.clear()
            fp = self._fingerprints[principal] = fingerprint(principal)
        return fp

    def take(self, principal: Principal, limit: int) -> float:
        """Count one request against the key's limit (a minute); 0 when allowed, else seconds to wait."""
        return self.limiter.take(self._fingerprint(principal), limit) if limit else 0.0

    def refund(self, principal: Principal, limit: int) -> None:
        """Give back a token taken for a request that another handler will count again."""
        if limit:
            self.limiter.refund(self._fingerprint(principal), limit)

    # --- admitting a request ---------------------------------------------------------------

    def admit(self, request: Request, principal: Principal | None, key: str) -> Principal:
        """The principal of a verified key, counted against its limit; else 401 or 429."""
        if principal is None:
            self._audit(request, 401, _key_label(key), "unknown or revoked key")
            raise HTTPException(401, "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
        # Read per request: the settings are the app's (app.state.settings), not a copy.
        limit = request.app.state.settings.rate_limit_per_minute
        wait = self.take(principal, limit)
        if wait > 0:
            self._audit(request, 429, f"{principal.name} (key {principal.key_id})", "rate limit exceeded")
            raise HTTPException(
                429,
                f"rate limit of {limit} requests a minute exceeded for this key",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        request.state.principal = principal
        return principal

    def _audit(self, request: Request, status: int, who: str, reason: str) -> None:
        now = time.monotonic()
        if self._audited.get((status, who), 0.0) > now:
            return
        with self._lock:
            if len(self._audited) > MAX_CACHED:
                self._audited.clear()
            self._audited[(status, who)] = now + CACHE_SECONDS
        client = request.client.host if request.client else "-"
        audit_log.warning("refused %s: %s for %s %s from %s", status, reason, who, request.url.path, client)


def admission_of(request: Request) -> Admission:
    admission: Admission = request.app.state.admission
    return admission


def _presented_or_401(request: Request) -> str | None:
    """The key presented, None when auth is disabled; 401 when a key is needed and missing."""
    if not request.app.state.settings.auth_enabled:
        return None
    # The query string is parsed only when no header carries a key (the common case has one).
    key = presented_key(request.headers) or request.query_params.get("key")
    if not key:
        raise HTTPException(
            401, "an API key is required (header X-API-Key, or ?key=)", headers={"WWW-Authenticate": "Bearer"}
        )
    return key


def _verify(request: Request, admission: Admission, key: str, conn: Conn | None) -> Principal | None:
    if conn is not None:
        return admission.verify(conn, key)
    with request_session(request) as session:
        return admission.verify(session, key)


def authenticate(request: Request, conn: Conn | None = None) -> Principal:
    """The caller's principal, for code that runs in a worker thread already (sync)."""
    admission = admission_of(request)
    key = _presented_or_401(request)
    if key is None:
        return ANONYMOUS_ADMIN
    found, principal = admission.cached(key)
    if not found:
        principal = _verify(request, admission, key, conn)
    return admission.admit(request, principal, key)


async def current_principal(request: Request) -> Principal:
    """The dependency form: async, and the database is touched only on a cache miss, so a hot
    endpoint pays neither a worker-thread hop nor a query for authentication."""
    admission = admission_of(request)
    key = _presented_or_401(request)
    if key is None:
        return ANONYMOUS_ADMIN
    found, principal = admission.cached(key)
    if not found:
        principal = await run_in_threadpool(_verify, request, admission, key, None)
    return admission.admit(request, principal, key)


def check_role(principal: Principal, role: str) -> Principal:
    if ROLE_RANK.get(principal.role, -1) < ROLE_RANK[role]:
        raise HTTPException(403, f"role {principal.role!r} may not do this; it needs {role!r} or above")
    return principal


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    if role not in ROLE_RANK:  # fail when the route is declared, not per request
        raise ValueError(f"unknown role {role!r}")

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return check_role(principal, role)

    dependency.__name__ = f"require_{role}"
    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Reporter = Annotated[Principal, Depends(require("reporter"))]
Dispatcher = Annotated[Principal, Depends(require("dispatcher"))]
Planner = Annotated[Principal, Depends(require("planner"))]
Admin = Annotated[Principal, Depends(require("admin"))]
