"""The FastAPI application factory; the engine pool lives for the lifespan of the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api import auth, errors, heap
from api.body_limit import BodyLimit
from api.routers import discover
from gis.core.db import engine_from_settings, session_factory
from gis.core.settings import Settings, get_settings

DESCRIPTION = """
gridmap answers which grid (网格), micro-grid (微网格) and police beat (警格) cover a place, takes in
incidents (事件) and assigns them automatically, and serves the command-centre maps of a county.
Coordinates may be WGS-84, GCJ-02 (Amap) or BD-09 (Baidu).
"""


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # No pre-ping on the API's pool: one round trip less per request (gis.core.db.make_engine).
        eng = engine or engine_from_settings(settings, pre_ping=False)
        app.state.engine = eng
        app.state.session_factory = session_factory(eng)
        # One count per key across the workers serving this database (api.rate_limits).
        auth.share_rate_limits(settings.var_dir, eng.url.render_as_string(hide_password=True))
        for hook in app.state.startup_hooks:
            hook(app)
        if settings.freeze_heap:
            heap.settle(force=True)  # after the start hooks (the lookup trees are preloaded)
        try:
            yield
        finally:
            for hook in app.state.shutdown_hooks:
                hook(app)
            if owns_engine:
                eng.dispose()

    # docs_url/redoc_url None: api/routers/docs.py serves both pages from local files (offline intranets).
    app = FastAPI(
        title="gridmap", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    errors.install(app)
    # Hot routers (ORDER < 0) first: Starlette tries routes in order, and every miss costs time.
    for module in sorted(discover(), key=lambda m: getattr(m, "ORDER", 0)):
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app)
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)
    # Added last, so outermost: the limit holds for the fast paths too.
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 1024 * 1024))
    return app
