"""Authentication by API key and role checks, as typed dependencies.

Roles are ordered viewer < reporter < dispatcher < planner < admin; an endpoint names the least
role it needs. Keys come in ``X-API-Key`` or ``Authorization: Bearer``. Verified keys are cached
for a few seconds so that hot endpoints do not query the key table on every request.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from threading import Lock
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api.deps import request_session
from api.rate_limits import LocalBuckets, SharedBuckets, fingerprint, table_path
from gis.core.privacy import ROLE_RANK
from gis.people.keys import Principal, verify_key
from gis.spatial.areas import Conn

log = logging.getLogger(__name__)
CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, Principal | None]] = {}
_lock = Lock()

# When auth is disabled (a setting for closed test benches) every caller acts as this principal.
ANONYMOUS_ADMIN = Principal(0, "anonymous", "admin")


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: a non-empty X-API-Key first, else a Bearer token."""
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def presents_a_key(headers: Mapping[str, str]) -> bool:
    """Whether the request tries to authenticate at all (any non-empty X-API-Key or
    Authorization header, usable or not): such a request is never treated as keyless."""
    return bool(headers.get("x-api-key") or headers.get("authorization"))


def clear_cache() -> None:
    with _lock:
        _cache.clear()
    _limiter.reset()


def cached_principal(key: str) -> tuple[bool, Principal | None]:
    """(found, principal) from the short key cache, without touching the database."""
    hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return True, hit[1]
    return False, None


def _remember(key: str, principal: Principal | None) -> None:
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (time.monotonic() + CACHE_SECONDS, principal)


def _lookup(request: Request, key: str, conn: Conn | None) -> Principal | None:
    found, principal = cached_principal(key)
    if found:
        return principal
    if conn is not None:
        principal = verify_key(conn, key)
    else:
        with request_session(request) as session:
            principal = verify_key(session, key)
    _remember(key, principal)
    return principal


def _presented_or_401(request: Request) -> str | None:
    """The key presented, None when auth is disabled; 401 when a key is needed and missing."""
    if not getattr(request.app.state.settings, "auth_enabled", True):
        return None
    key = presented_key(request.headers)
    if not key:
        raise HTTPException(401, "an API key is required (header X-API-Key)", headers={"WWW-Authenticate": "Bearer"})
    return key


def authenticate(request: Request, conn: Conn | None = None) -> Principal:
    """The caller's principal, for code that runs in a worker thread already (sync)."""
    key = _presented_or_401(request)
    if key is None:
        return ANONYMOUS_ADMIN
    return _admit(request, _lookup(request, key, conn))


async def current_principal(request: Request) -> Principal:
    """The dependency form: async, and the database is touched only on a cache miss, so a hot
    endpoint pays neither a worker-thread hop nor a query for authentication."""
    key = _presented_or_401(request)
    if key is None:
        return ANONYMOUS_ADMIN
    found, principal = cached_principal(key)
    if not found:
        principal = await run_in_threadpool(_lookup, request, key, None)
    return _admit(request, principal)


def _admit(request: Request, principal: Principal | None) -> Principal:
    settings = request.app.state.settings
    if principal is None:
        raise HTTPException(401, "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    limit = getattr(settings, "rate_limit_per_minute", 0)
    if limit:
        wait = take_token(principal, limit)
        if wait > 0:
            raise HTTPException(
                429,
                f"rate limit of {limit} requests a minute exceeded for this key",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
    return principal


_limiter: LocalBuckets | SharedBuckets = LocalBuckets()
_limiter_lock = Lock()


def share_rate_limits(var_dir: Path, database: str) -> None:
    """Count rate limits in the table every worker serving ``database`` maps (api.rate_limits),
    instead of in this process alone. A folder that cannot hold the table leaves them per process."""
    global _limiter
    path = table_path(var_dir, database)
    with _limiter_lock:
        if isinstance(_limiter, SharedBuckets) and _limiter.path == path:
            return
        try:
            shared = SharedBuckets(path)
        except OSError as exc:
            log.warning("rate limits are counted per worker: %s is not usable (%s)", path, exc)
            return
        # The old table stays open: a request in flight may still be counting in it.
        _limiter = shared


def take_token(principal: Principal, limit: int) -> float:
    """Count one request against the key's rate limit; 0 when allowed, else seconds to wait."""
    return _limiter.take(_fingerprint(principal), limit)


def refund_token(principal: Principal, limit: int) -> None:
    """Give back a token taken for a request that another handler will count again."""
    _limiter.refund(_fingerprint(principal), limit)


@functools.lru_cache(maxsize=4096)
def _fingerprint(principal: Principal) -> int:
    return fingerprint(principal)


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
