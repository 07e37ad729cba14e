"""Local shard servers for tests and the benchmark: small PostgreSQL clusters under a folder of
their own (gis.core.cluster's layout, initdb and start, with modest memory), each reachable over
its Unix socket, stopped and removed at the end. A production deployment points GRIDMAP_SHARDS
at real servers instead."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from gis.core import cluster
from gis.core.settings import Settings

# Appended after cluster._initdb's sizing (the last value wins): several servers share a small machine.
_SMALL = """
# gridmap shard server (gis.shards.local)
shared_buffers = 256MB
maintenance_work_mem = 256MB
max_connections = 60
fsync = off
synchronous_commit = off
"""


@dataclass(frozen=True)
class LocalServer:
    name: str
    settings: Settings

    def url(self, database: str) -> str:
        return cluster.url(self.settings, database)

    def stop(self) -> bool:
        return cluster.stop(self.settings)

    def start(self) -> None:
        cluster.start(self.settings)


def start_server(name: str, base: Path, port: int) -> LocalServer:
    """Create and start a cluster under ``base/name`` listening on ``port``."""
    var = base / name
    var.mkdir(parents=True, exist_ok=True)
    if cluster._is_root():
        owner = pwd.getpwnam(cluster.OWNER)
        os.chown(var, owner.pw_uid, owner.pw_gid)
    settings = Settings(var_dir=var, pg_port=port, database_url=None)
    bindir = cluster.ensure_installed()
    cluster._prepare_root(cluster.layout(settings))
    lay = cluster.layout(settings)
    if not (lay.data / "PG_VERSION").exists():
        cluster._initdb(bindir, lay, settings)
        with (lay.data / "postgresql.conf").open("a") as fh:
            fh.write(_SMALL)
    cluster.start(settings)
    return LocalServer(name, settings)


@contextmanager
def local_servers(names: list[str], first_port: int) -> Iterator[dict[str, LocalServer]]:
    """Running local servers, one per name on consecutive ports; stopped and removed afterwards.
    The folder is under /tmp: the server's OS user must reach it (pytest's tmp_path is private)."""
    base = Path(tempfile.mkdtemp(prefix="gridmap-shards-", dir="/tmp"))
    if cluster._is_root():
        shutil.chown(base, cluster.OWNER, cluster.OWNER)
    servers: dict[str, LocalServer] = {}
    try:
        for i, name in enumerate(names):
            servers[name] = start_server(name, base, first_port + i)
        yield servers
    finally:
        for server in servers.values():
            with suppress(cluster.ClusterError):
                server.stop()
        shutil.rmtree(base, ignore_errors=True)
