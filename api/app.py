"""The FastAPI application factory: every router, middleware, mount, error handler, app-owned cache
and background task is listed here, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware import Middleware
from sqlalchemy.engine import Engine

from api import errors, heap, lookup_service
from api.auth import Admission
from api.body_limit import BodyLimit
from api.deps import Sessions, SessionSource
from api.fastpath import IntakeFastPath, LookupFastPath
from api.routers import (
    audit,
    boundaries,
    boundary_pages,
    docs,
    draft_operations,
    events,
    export,
    generations,
    health,
    incidents,
    lookup,
    lookup_batch,
    maps,
    ogc,
    org_units,
    redistrict,
    staff,
    staffing,
    stats,
    tiles,
    units,
)
from gis.core.db import engine_from_settings
from gis.core.settings import Settings, get_settings
from gis.incidents.totals import TotalCounter
from gis.outputs.maplayers import LayerCache
from gis.work.eventhub import EventHub
from maps import offline

DESCRIPTION = """
gridmap answers which grid (网格), micro-grid (微网格) and police beat (警格) cover a place, takes in
incidents (事件) and assigns them automatically, and serves the command-centre maps of a county.
Coordinates may be WGS-84, GCJ-02 (Amap) or BD-09 (Baidu).
"""

# Starlette tries routes in this order and every miss costs time: the hottest router comes first.
ROUTERS = [
    lookup.router,  # GET /lookup: the most requested endpoint
    lookup_batch.router,  # POST /lookup/batch
    audit.router,  # GET /audit
    boundaries.router,  # /boundaries/drafts/...: drafts, uploads, validation, publishing
    boundary_pages.router,  # /maps/boundaries/drafts/{id}[/impact]: the editor and impact pages (before maps)
    docs.router,  # /docs, /redoc (local Swagger UI and ReDoc), /favicon.ico: no key
    draft_operations.router,  # POST /boundaries/drafts/{id}/operations: split, merge, move, rename, delete
    events.router,  # GET /events: the live push (SSE)
    export.router,  # GET /export/{layer}
    generations.router,  # /boundaries/generations: history, diff, restore
    health.router,  # GET /health (no key)
    incidents.router,  # /incidents: intake, workflow, listing
    maps.router,  # /maps/...: map pages and the data they fetch
    ogc.router,  # /ogc: OGC API - Features and Tiles (tipg)
    org_units.router,  # /org-units: organisation units and their members
    staff.router,  # /staff: people and their postings
    staffing.router,  # /staffing: team gaps per grid (JSON, XLSX, GeoJSON)
    redistrict.router,  # /analysis/redistrict: redistricting proposals (background jobs)
    stats.router,  # GET /stats
    tiles.router,  # GET /tiles/{layer}/{z}/{x}/{y}.mvt
    units.router,  # GET /grids/{code}, GET /beats/{code}
]


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, sessions: SessionSource | None = None
) -> FastAPI:
    """The API. ``engine`` and ``sessions`` default to ones made from the settings at start-up;
    tests pass their own (``sessions`` then keeps a request's work inside the test's transaction)."""
    settings = settings or get_settings()
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # No pre-ping on the API's pool: one round trip less per request (gis.core.db.make_engine).
        eng = engine or engine_from_settings(settings, pre_ping=False)
        app.state.engine = eng
        if sessions is None:
            app.state.sessions = Sessions(eng)
        # One rate-limit count per key across the workers serving this database (api.rate_limits).
        app.state.admission.share_limits(settings.var_dir, eng.url.render_as_string(hide_password=True))
        # The LISTEN thread that reloads the lookup trees on a publish; the trees preloaded.
        listener = lookup_service.listen(app.state.lookup, eng)
        # tipg's asyncpg pool and catalog, opened in the background (retried per request).
        ogc_runtime = ogc.start(app, eng)
        app.state.events = EventHub(eng)  # the SSE fan-out: one LISTEN per process, from the first stream
        if settings.freeze_heap:
            heap.settle(force=True)  # after the lookup trees are loaded
        try:
            yield
        finally:
            app.state.events.stop()
            ogc_runtime.close()
            listener.stop()
            if owns_engine:
                eng.dispose()

    middleware = [  # outermost first
        # The body-size limit, outermost so that it holds for the fast paths too.
        Middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 1024 * 1024)),
        # POST /incidents by a cached key, answered before FastAPI's routing (api.fastpath).
        Middleware(IntakeFastPath),
        # GET /lookup by coordinate by a cached key, likewise.
        Middleware(LookupFastPath),
    ]
    # docs_url/redoc_url None: api/routers/docs.py serves both pages from local files (offline intranets).
    app = FastAPI(
        title="gridmap",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        middleware=middleware,
        docs_url=None,
        redoc_url=None,
    )
    # What the app owns and its requests share (the engine and sessions come at start-up).
    app.state.settings = settings
    app.state.admission = Admission()  # the key cache, rate-limit buckets and refusal audit
    app.state.lookup = lookup_service.new_service(settings)  # the lookup trees, names and staff in memory
    app.state.map_layers = LayerCache()  # simplified boundary layers of the maps, per generation
    app.state.totals = TotalCounter()  # listing totals of large result sets, reused a few seconds
    if sessions is not None:
        app.state.sessions = sessions  # given: usable before start-up too (tests without lifespan)

    errors.install(app)  # JSON errors; database outages as 503 with Retry-After
    for exc_type, handler in {**incidents.EXCEPTION_HANDLERS, **ogc.EXCEPTION_HANDLERS}.items():
        app.add_exception_handler(exc_type, handler)
    for router in ROUTERS:
        app.include_router(router)
    # The map pages' and the boundary editor's scripts and styles, from this server (offline intranets).
    app.mount(offline.DEFAULT_PREFIX, offline.static_files_app(), name="vendor")
    return app
