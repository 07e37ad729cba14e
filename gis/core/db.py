"""Engines, sessions and database preparation (create database, extensions, migrations)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from gis.core import cluster
from gis.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from alembic.config import Config

REQUIRED_EXTENSIONS = ("postgis", "pg_trgm")
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class DatabaseError(RuntimeError):
    """The database is unusable for gridmap; the message names the problem and the fix."""


def database_url(settings: Settings | None = None) -> str:
    """The configured URL, else the local formation's (``gridmap db up --replicas``: every node,
    the writable one chosen at connect time), else the local cluster's. Starts nothing."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    from gis.core import replicas

    formation = replicas.configured(settings)
    return replicas.url(formation, settings.pg_database) if formation else cluster.url(settings)


def read_database_url(settings: Settings | None = None) -> str | None:
    """Where reads that tolerate a little lag may go (api.deps.ReadSessionDep): the configured
    read URL, else the local formation's standbys (``target_session_attrs=prefer-standby``: the
    primary when no standby is up); None = the main URL. With synchronous commits a standby has
    every acknowledged commit on disk, applied a few milliseconds later at most."""
    settings = settings or get_settings()
    if settings.read_database_url or settings.database_url:
        return settings.read_database_url
    from gis.core import replicas

    formation = replicas.configured(settings)
    return replicas.url(formation, settings.pg_database, read_only=True) if formation else None


def make_engine(
    url: str | URL, *, pool_size: int = 10, max_overflow: int = 10, pre_ping: bool = True, **kw: object
) -> Engine:
    """An engine with the project's connection settings.

    ``pre_ping`` checks each pooled connection before use, so a long-lived engine (the CLI's, the
    tests') survives a database restart without a single failed call. The API turns it off (see
    ``api.app``): it costs a round trip on every checkout, and there a failed call after a restart
    is answered 503 + Retry-After while SQLAlchemy discards the dead pool, so the service still
    recovers by itself.

    Automatic preparing is off: psycopg would turn a statement run 5 times into a server-side
    prepared statement, and PostgreSQL may then switch to a generic plan that ignores the values,
    which queries whose best plan depends on them (a geocoder probe, a time window) pay for; an
    intake with an unpinned duplicate check went from 2.3 to 7.5 ms of database CPU. A statement
    known to plan well generically lowers the threshold for its own execution
    (``gis.incidents.intake._insert``).
    """
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        connect_args={"prepare_threshold": 2**31 - 1},
        **kw,
    )


def engine_from_settings(settings: Settings | None = None, *, pre_ping: bool = True) -> Engine:
    settings = settings or get_settings()
    return make_engine(
        database_url(settings),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pre_ping=pre_ping,
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits at the end of the block, or rolls back on any error."""
    with session_factory(engine)() as session, session.begin():
        yield session


def _describe_operational(exc: OperationalError, url: URL) -> str:
    text = str(exc.orig or exc).strip().splitlines()[0] if (exc.orig or exc) else "unknown error"
    where = url.host or url.query.get("host") or "localhost"
    return f"cannot connect to PostgreSQL at {where}:{url.port or 5432} database {url.database!r}: {text}"


def ensure_database(url_text: str) -> None:
    """Create the database named in the URL if it does not exist, and the extensions gridmap needs."""
    url = make_url(url_text)
    admin = make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database})
            if not exists:
                # CREATE DATABASE takes no bound parameters; the name is validated by the settings pattern.
                conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    except OperationalError as exc:
        raise DatabaseError(_describe_operational(exc, url)) from None
    finally:
        admin.dispose()
    ensure_extensions(url_text)


def ensure_extensions(url_text: str) -> None:
    url = make_url(url_text)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            for ext in REQUIRED_EXTENSIONS:
                available = conn.scalar(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": ext})
                if not available:
                    raise DatabaseError(
                        f"the PostgreSQL server has no {ext} extension: install it on the server "
                        f"(Debian: postgresql-<version>-postgis-3 for postgis, postgresql-contrib for pg_trgm)"
                    )
                conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {ext}"))
    except OperationalError as exc:
        raise DatabaseError(_describe_operational(exc, url)) from None
    except ProgrammingError as exc:
        raise DatabaseError(f"cannot create extensions in {url.database!r}: {exc.orig}") from None
    finally:
        engine.dispose()


def alembic_config(url_text: str) -> Config:
    # Alembic is imported only here: it is a quarter of a second that only migrations need.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url_text.replace("%", "%%"))
    return cfg


def migrate(url_text: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url_text), revision)


def downgrade(url_text: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url_text), revision)


def prepare(settings: Settings | None = None, replicas: int = 0) -> str:
    """Everything `gridmap db up` does: the local cluster (or, with ``replicas``, the local
    pg_auto_failover formation) if no URL is configured, database, extensions, migrations."""
    settings = settings or get_settings()
    if settings.database_url:
        url_text = settings.database_url
    elif replicas or _formation_exists(settings):
        from gis.core import replicas as formation

        url_text = formation.url(formation.up(settings, replicas or None), settings.pg_database)
    else:
        url_text = cluster.start(settings)
    ensure_database(url_text)
    migrate(url_text)
    return url_text


def _formation_exists(settings: Settings) -> bool:
    from gis.core import replicas

    return replicas.configured(settings) is not None


def versions(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT current_setting('server_version') AS pg, postgis_full_version() AS postgis")
        ).one()
    postgis = str(row.postgis).split('"')[1] if '"' in str(row.postgis) else str(row.postgis)
    return {"postgresql": str(row.pg), "postgis": postgis}


def _libpq_args(url_text: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore from a SQLAlchemy URL (password via environment)."""
    url = make_url(url_text)
    args = ["--dbname", str(url.database)]
    host = url.host or url.query.get("host")
    if host:
        args += ["--host", str(host)]
    port = url.port or url.query.get("port")
    if port:
        args += ["--port", str(port)]
    if url.username:
        args += ["--username", url.username]
    env = {"PGPASSWORD": url.password} if url.password else {}
    return args, env


def _pg_tool(name: str) -> str:
    import shutil

    # Prefer the server's own version of the tool: pg_dump refuses servers newer than itself.
    versions = sorted(p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / name).exists())
    if versions:
        return str(versions[-1] / name)
    found = shutil.which(name)
    if not found:
        raise DatabaseError(f"{name} is not installed (Debian: postgresql-client)")
    return found


def backup(url_text: str, path: Path) -> None:
    """Dump the whole database (custom format, compressed) to ``path``; a partial file never remains."""
    import os
    import subprocess

    args, env = _libpq_args(url_text)
    tmp = path.with_name(path.name + ".partial")
    proc = subprocess.run(
        [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(tmp), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=3600,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise DatabaseError(f"pg_dump failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    tmp.replace(path)


def restore(url_text: str, path: Path) -> None:
    """Replace the database's contents with a dump made by ``backup`` (one transaction)."""
    import os
    import subprocess

    if not path.is_file():
        raise DatabaseError(f"no backup file at {path}")
    args, env = _libpq_args(url_text)
    # --clean --if-exists drops what the dump will recreate; --single-transaction makes it all or nothing.
    proc = subprocess.run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            *args,
            str(path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=3600,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise DatabaseError(f"pg_restore failed (database unchanged): {lines[-1] if lines else proc.returncode}")


@contextmanager
def scratch_database(base_url: str, suffix: str) -> Iterator[str]:
    """A freshly created, migrated database beside ``base_url``'s (named ``<db>_<suffix>``), dropped
    afterwards: for tests and benchmarks whose work must commit for real."""
    url = make_url(base_url)
    name = f"{url.database}_{suffix}"
    admin = make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    drop = sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    try:
        with admin.connect() as conn:
            conn.execute(drop)
        scratch = url.set(database=name).render_as_string(hide_password=False)
        ensure_database(scratch)
        migrate(scratch)
        yield scratch
    finally:
        with admin.connect() as conn:
            conn.execute(drop)
        admin.dispose()
