"""The app's in-memory lookup service (gis.spatial.lookup.LookupService): made, preloaded and kept
current by a LISTEN thread (gis.core.notify) that reloads it when boundaries are published. api.app
wires these at start-up; the routes get the service with ``service_of``."""

from __future__ import annotations

import logging

from fastapi import Request
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from api import heap
from gis.core.notify import Listener, conninfo_from_url
from gis.core.settings import Settings
from gis.spatial.lookup import LookupService

log = logging.getLogger(__name__)


def new_service(settings: Settings) -> LookupService:
    """The app's lookup service (``app.state.lookup``); it settles the heap after each load of
    boundary data when the setting asks for it (api.heap)."""
    return LookupService(
        snap_tolerance_m=settings.snap_tolerance_m, on_loaded=heap.settle if settings.freeze_heap else None
    )


def listen(service: LookupService, engine: Engine) -> Listener:
    """Start the LISTEN thread that reloads the service when boundaries are published, then
    preload the service; the caller stops the listener at shutdown."""

    def state(up: bool) -> None:
        service.listening = up

    listener = Listener(conninfo_from_url(engine.url), service.invalidate, on_state=state)
    listener.start()
    preload(service, engine)
    return listener


def preload(service: LookupService, engine: Engine) -> None:
    """Load the trees and names of the generation in force before the worker takes requests:
    otherwise whichever worker is hit first would load them while requests queue behind it.
    Only the trees are kept (they never change); the generation list and staff are read again
    on the first request, from that request's own view of the database. A database that is down
    at start-up only means the first request loads them."""
    try:
        with engine.connect() as conn:
            service.warm(conn)
    except sa_exc.DBAPIError as exc:
        log.warning("lookup trees not preloaded (%s); the first lookup loads them", exc.__class__.__name__)
    service.invalidate()


def service_of(request: Request) -> LookupService:
    service: LookupService = request.app.state.lookup
    return service
