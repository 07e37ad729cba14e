"""The FastAPI application factory: every router, middleware, mount, error handler, app-owned cache
and background task is listed here, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware import Middleware
from sqlalchemy.engine import Engine

import api.routers.visits as visit_routes
from api import errors, heap, lookup_service
from api.auth import Admission
from api.body_limit import BodyLimit
from api.deps import Sessions, SessionSource
from api.fastpath import IntakeFastPath, LookupFastPath
from api.fieldwork_fastpath import FieldworkFastPath
from api.public_fastpath import PublicFastPath
from api.routers import (
    analysis,
    assessments,
    attachments,
    audit,
    boundaries,
    boundary_pages,
    briefings,
    campaigns,
    dispatch,
    docs,
    draft_operations,
    events,
    export,
    fieldwork,
    generations,
    hazards,
    health,
    hotlines,
    incidents,
    kpis,
    lookup,
    lookup_batch,
    maps,
    ogc,
    open311,
    org_units,
    places,
    public_reports,
    redistrict,
    staff,
    staffing,
    stats,
    tiles,
    units,
    webhooks,
)
from gis.core.db import engine_from_settings, make_engine, read_database_url
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
    analysis.router,  # /analysis: hot spots, emerging hot spots, repeat locations
    assessments.router,  # /assessments, /assessment-schemes: monthly assessment (考核) of people and grids
    attachments.router,  # /incidents/{id}/attachments (and the other owners'), /attachments/{id}[/thumbnail]
    audit.router,  # GET /audit
    boundaries.router,  # /boundaries/drafts/...: drafts, uploads, validation, publishing
    boundary_pages.router,  # /maps/boundaries/drafts/{id}[/impact]: the editor and impact pages (before maps)
    campaigns.router,  # /campaigns: 专项整治 and their progress
    docs.router,  # /docs, /redoc (local Swagger UI and ReDoc), /favicon.ico: no key
    draft_operations.router,  # POST /boundaries/drafts/{id}/operations: split, merge, move, rename, delete
    dispatch.router,  # /me/tasks, /incidents/{id}/dispatch|accept|decline|..., /routing-rules
    events.router,  # GET /events: the live push (SSE)
    export.router,  # GET /export/{layer}
    fieldwork.router,  # /buildings/{id}[/inspections], /checklists, /risk-intervals: inspections
    generations.router,  # /boundaries/generations: history, diff, restore
    hazards.router,  # /hazards: reports, the rectification loop, listing
    health.router,  # GET /health (no key)
    hotlines.router,  # /hotlines/{code}: 12345 / 110 tickets in, their category table and callbacks
    incidents.router,  # /incidents: intake, workflow, listing
    kpis.router,  # /kpis, /incidents/{id}/callback, /callbacks/due: the county's KPIs and callbacks
    briefings.router,  # /briefings/weekly[.xlsx], /maps/briefing, /maps/data/grids/kpis.geojson (before maps)
    visit_routes.router,  # /visits, /patrols, /grids/{code}/coverage: household visits, patrols, coverage
    maps.router,  # /maps/...: map pages and the data they fetch
    ogc.router,  # /ogc: OGC API - Features and Tiles (tipg)
    open311.router,  # /open311/v2: Open311 GeoReport v2 (reads public, writes with api_key)
    places.router,  # POST /places/import: points of interest for the address lookup
    org_units.router,  # /org-units: organisation units and their members
    public_reports.router,  # /public/...: residents report, follow and rate (no staff key); /satisfaction
    staff.router,  # /staff: people and their postings
    staffing.router,  # /staffing: team gaps per grid (JSON, XLSX, GeoJSON)
    redistrict.router,  # /analysis/redistrict: redistricting proposals (background jobs)
    stats.router,  # GET /stats
    tiles.router,  # GET /tiles/{layer}/{z}/{x}/{y}.mvt
    units.router,  # GET /grids/{code}, GET /beats/{code}
    webhooks.router,  # /org-units/{code}/webhooks, /webhooks/{id}: webhooks and their delivery log
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
        # Reads that tolerate a little lag (tiles) go to a standby when there is one (api.deps).
        read_url = read_database_url(settings) if owns_engine else None
        read_eng = make_engine(read_url, pool_size=settings.pool_size, pre_ping=False) if read_url else None
        if read_eng is not None:
            app.state.read_sessions = Sessions(read_eng)
        # One rate-limit count per key across the workers serving this database (api.rate_limits).
        if settings.rate_limit_store == "database":  # API replicas on several machines
            app.state.admission.share_limits_in_database(eng)
        else:
            app.state.admission.share_limits(settings.var_dir, eng.url.render_as_string(hide_password=True))
        # The LISTEN thread that reloads the lookup trees on a publish; the trees preloaded.
        listener = lookup_service.listen(app.state.lookup, eng)
        # tipg's asyncpg pool and catalog, opened in the background (retried per request).
        ogc_runtime = ogc.start(app, eng)
        app.state.events = EventHub(eng)  # the SSE fan-out: one log reader per process, from the first stream
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
            if read_eng is not None:
                read_eng.dispose()

    middleware = [  # outermost first
        # The body-size limit, outermost so that it holds for the fast paths too.
        Middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 1024 * 1024)),
        # POST /incidents by a cached key, answered before FastAPI's routing (api.fastpath).
        Middleware(IntakeFastPath),
        # GET /lookup by coordinate by a cached key, likewise.
        Middleware(LookupFastPath),
        # POST /visits (one visit) and POST /buildings/{id}/inspections, likewise (api.fieldwork_fastpath).
        Middleware(FieldworkFastPath),
        # POST /public/reports (JSON, no photos) and GET /public/reports/{ticket} (api.public_fastpath).
        Middleware(PublicFastPath),
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
    handlers = {
        **incidents.EXCEPTION_HANDLERS,
        **dispatch.EXCEPTION_HANDLERS,
        **ogc.EXCEPTION_HANDLERS,
        **public_reports.EXCEPTION_HANDLERS,
        **fieldwork.EXCEPTION_HANDLERS,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
    for router in ROUTERS:
        app.include_router(router)
    # Visits and patrols: 422 naming the row or point, 404 outside the scope, 403.
    for exc_type, handler in visit_routes.EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    # The map pages' and the boundary editor's scripts and styles, from this server (offline intranets).
    app.mount(offline.DEFAULT_PREFIX, offline.static_files_app(), name="vendor")
    return app
