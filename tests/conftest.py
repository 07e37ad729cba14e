"""Test fixtures: a real PostGIS database, and each test inside a transaction that is rolled back.

The database is ``<name>_test_<pid>`` (one per pytest process) on the configured server, or on the
local cluster that ``gridmap db up`` runs; ``GRIDMAP_TEST_DATABASE_URL`` overrides it. It is created
and migrated afresh once per session and dropped at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from boundaries.generations import publish_layers
from boundaries.sample import MiniCounty, build_mini_county
from gis.core import db
from gis.core.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]


def _test_url() -> str:
    explicit = os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    if explicit:
        return Settings(database_url=explicit).database_url or explicit
    settings = get_settings()
    base = db.database_url(settings)
    if settings.uses_local_cluster:
        from gis.core import cluster

        cluster.start(settings)
    url = make_url(base)
    # One database per pytest process, so that parallel runs (xdist workers, several developers'
    # runs on one server) never drop each other's database.
    name = f"{url.database}_test_{os.getpid()}"
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_stale_test_databases(admin: Engine, prefix: str) -> None:
    """Drop test databases left by pytest processes that no longer run (killed runs)."""
    with admin.connect() as conn:
        query = sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p")
        names = conn.execute(query, {"p": f"{prefix}%"}).scalars().all()
    for name in names:
        pid = name.rsplit("_", 1)[-1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url_text = _test_url()
    url = make_url(url_text)
    admin = db.make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    if not os.environ.get("GRIDMAP_TEST_DATABASE_URL"):
        _drop_stale_test_databases(admin, str(url.database).rsplit("_", 1)[0] + "_")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    db.ensure_database(url_text)
    db.migrate(url_text)
    yield url_text
    if not os.environ.get("GRIDMAP_TEST_DATABASE_URL"):
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = db.make_engine(database_url, pool_size=5, max_overflow=5)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose outer transaction is rolled back after the test: nothing persists."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    # Session commits become savepoint releases inside the test's transaction.
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as sess:
        yield sess


class SessionsInTransaction:
    """The app's database work inside a test's session (and so its rolled-back transaction):
    what ``api.deps.Sessions`` gives a request, every request here gets this one session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @contextmanager
    def session(self) -> Iterator[Session]:
        yield self._session
        self._session.flush()

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        yield self._session.connection()


@pytest.fixture
def sessions_in_transaction(session: Session) -> SessionsInTransaction:
    """What to pass as ``create_app(sessions=...)`` for an app that works in the test's transaction."""
    return SessionsInTransaction(session)


@pytest.fixture
def app(engine: Engine, sessions_in_transaction: SessionsInTransaction):  # type: ignore[no-untyped-def]
    from api.app import create_app

    # No heap freezing per test app: it is a full collection each time (tests/api/test_heap.py).
    return create_app(Settings(freeze_heap=False), engine=engine, sessions=sessions_in_transaction)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


@pytest.fixture
def mini_county(connection: Connection) -> MiniCounty:
    layers = build_mini_county()
    import datetime as dt

    gen = publish_layers(
        connection, layers, note="mini test county", author="tests", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    return MiniCounty(
        gen, layers["town"], layers["village"], layers["grid"], layers["micro_grid"], layers["beat"], layers["station"]
    )


@pytest.fixture
def make_key(connection: Connection):  # type: ignore[no-untyped-def]
    """Create an API key of a role (and a scope: ``CODE[,CODE]``, None = the whole county) inside the
    test transaction; returns the headers to send."""
    from gis.people.keys import create_key

    def _make(role: str = "admin", name: str | None = None, scope: str | None = None) -> dict[str, str]:
        return {"X-API-Key": create_key(connection, role, name or f"test-{role}", scope)}

    return _make


@pytest.fixture
def admin_headers(make_key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_key("admin")


# --- a real server, for what only separate processes show (workers, outages, real clients) -------


@contextmanager
def scratch_database(database_url: str, suffix: str) -> Iterator[str]:
    """A migrated database of its own beside the test database, whose data a server can see
    (it cannot see a test's transaction); dropped at the end."""
    url = make_url(database_url)
    name = f"{url.database}_{suffix}"
    scratch = url.set(database=name).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    try:
        db.ensure_database(scratch)
        db.migrate(scratch)
        yield scratch
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(env: Mapping[str, str], log: Path, workers: int = 1, start_timeout_s: float = 60) -> Iterator[str]:
    """``uvicorn api.main:app`` in a process group of its own, with ``env`` over this process's
    environment and its output in ``log``; yields the base URL once /health answers, and stops
    every worker at the end."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    cmd += ["--no-access-log", "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, start_new_session=True, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not come up (exit {proc.poll()}): {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
