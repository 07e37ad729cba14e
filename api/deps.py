"""Typed dependencies shared by the routers (``SessionDep``-style, as in the FastAPI template), and
``Sessions``: where a request's database work runs."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from gis.core.db import session_factory
from gis.core.settings import Settings


class SessionSource(Protocol):
    """Where a request's database work runs (``app.state.sessions``)."""

    def session(self) -> AbstractContextManager[Session]: ...

    def autocommit(self) -> AbstractContextManager[Connection]: ...


class Sessions:
    """Sessions that commit when the handler returns normally (and roll back on error), and
    autocommit connections, from the app's engine. The app owns one (``app.state.sessions``);
    a test gives ``create_app`` one that keeps all of a request's work inside its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._factory = session_factory(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """One round trip a statement (no BEGIN and COMMIT around it), for intake and address
        lookups."""
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Generator[Session, None, None]:
    """One session per request; commits when the handler returns normally, rolls back on error."""
    with request_session(request) as session:
        yield session


def get_read_session(request: Request) -> Generator[Session, None, None]:
    """A session for reads that tolerate a little lag (tiles): on a standby when one is
    configured (gis.core.db.read_database_url), else the same as ``get_session``."""
    sessions: SessionSource = getattr(request.app.state, "read_sessions", None) or request.app.state.sessions
    with sessions.session() as session:
        yield session


def request_session(request: Request) -> AbstractContextManager[Session]:
    """A session from the same source as ``SessionDep``, for code that needs the database only
    sometimes and so does not declare the dependency (FastAPI runs a sync dependency in a worker
    thread, twice per request)."""
    sessions: SessionSource = request.app.state.sessions
    return sessions.session()


def autocommit_connection(request: Request) -> AbstractContextManager[Connection]:
    """An autocommit connection taken straight from the pool, for intake and address lookups.
    Not a dependency: every sync dependency costs worker-thread hops, which at these rates is
    measurable. Use it inside the worker thread, so no round trip ever waits on the event loop."""
    sessions: SessionSource = request.app.state.sessions
    return sessions.autocommit()


def county_session(request: Request, county: str) -> AbstractContextManager[Session]:
    """A session for one county's work: on the county's shard when GRIDMAP_SHARDS shards the
    province (gis.shards.routing; a shard down raises ShardUnavailable, answered 503 naming it),
    else the same as ``request_session``."""
    from gis.shards.routing import configured_router

    router = getattr(request.app.state, "shard_router", None) or configured_router()
    if router is None:
        return request_session(request)
    return router.session(county)


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
