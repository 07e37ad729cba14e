"""Typed dependencies shared by the routers (``SessionDep``-style, as in the FastAPI template)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from gis.core.settings import Settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Generator[Session, None, None]:
    """One session per request; commits when the handler returns normally, rolls back on error."""
    factory = request.app.state.session_factory
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def request_session(request: Request) -> Iterator[Session]:
    """A session from the same provider as ``SessionDep`` (or its override in tests, so that both
    see one transaction), for code that needs the database only sometimes and so does not declare
    the dependency (FastAPI runs a sync dependency in a worker thread, twice per request)."""
    override = request.app.dependency_overrides.get(get_session)
    gen: Generator[Session, None, None] = override() if override is not None else get_session(request)
    session = next(gen)
    try:
        yield session
    except BaseException as exc:
        with suppress(BaseException):
            gen.throw(exc)
        raise
    else:
        next(gen, None)


@contextmanager
def autocommit_connection(request: Request) -> Iterator[Connection]:
    """An autocommit connection taken straight from the pool, for intake and address lookups:
    one round trip a statement (no BEGIN and COMMIT around it). Not a dependency: every sync
    dependency costs worker-thread hops, which at these rates is measurable. Use it inside the
    worker thread, so no round trip ever waits on the event loop. When the
    session is overridden (the tests' outer transaction), its connection is used as it is, so
    the work stays inside that transaction."""
    if get_session in request.app.dependency_overrides:
        with request_session(request) as session:
            yield session.connection()
        return
    with request.app.state.engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
