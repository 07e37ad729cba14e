"""The embedded PostgreSQL + PostGIS cluster that gridmap runs when no database URL is configured.

The cluster lives under ``<var_dir>/pg`` and belongs to this checkout only: ``down`` stops the
server of this data folder and nothing else. Clients connect over a Unix socket with trust
authentication (only users who can enter the socket folder can connect); TCP on 127.0.0.1 is
password-protected, for tools such as GDAL or a benchmark peer.

PostgreSQL refuses to run as root, so when we are root the cluster is owned and run by the
``postgres`` OS user. That user must be able to traverse the path to the data folder; a clone
inside a 0700 folder (``mktemp -d``) is not traversable, so the data then goes to
``/var/lib/gridmap/<hash>`` and ``var/pg`` becomes a link to it.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gis.core.settings import Settings

OWNER = "postgres"
PG_LIB = Path("/usr/lib/postgresql")


class ClusterError(RuntimeError):
    """The local cluster cannot be set up or started; the message says what to do."""


@dataclass(frozen=True)
class Layout:
    root: Path  # var/pg (may be a link)
    data: Path
    run: Path  # socket folder
    log: Path
    password_file: Path


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_owner(cmd: list[str]) -> list[str]:
    if not _is_root():
        return cmd
    return ["runuser", "-u", OWNER, "--", *cmd]


def _run(
    cmd: list[str], *, owner: bool = True, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full = _as_owner(cmd) if owner else cmd
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ClusterError(f"{Path(cmd[0]).name} failed: {detail[-1] if detail else proc.returncode}")
    return proc


def _versions() -> list[int]:
    if not PG_LIB.is_dir():
        return []
    found = [int(p.name) for p in PG_LIB.iterdir() if p.name.isdigit() and (p / "bin" / "pg_ctl").exists()]
    return sorted(found)


def _postgis_ok(version: int) -> bool:
    return Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists()


def _apt_install(packages: list[str]) -> None:
    if shutil.which("apt-get") is None:
        raise ClusterError(
            "PostgreSQL with PostGIS is not installed and this is not a Debian/Ubuntu system: install "
            "PostgreSQL 13+ and PostGIS 3 (server binaries and the postgis extension), or set GRIDMAP_DATABASE_URL"
        )
    prefix: list[str] = [] if _is_root() else ["sudo", "-n"]
    if prefix and shutil.which("sudo") is None:
        raise ClusterError(
            f"need root to install {' '.join(packages)}: run `sudo apt-get install {' '.join(packages)}`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            raise ClusterError(f"`{' '.join(cmd)}` failed ({' '.join(tail)}); install {' '.join(packages)} by hand")


def ensure_installed() -> Path:
    """Return the server's bin folder, installing PostgreSQL and PostGIS from the OS packages if missing."""
    versions = _versions()
    if not versions:
        _apt_install(["postgresql", "postgresql-contrib"])
        versions = _versions()
        if not versions:
            raise ClusterError("apt installed postgresql but no server binaries appeared under /usr/lib/postgresql")
    version = versions[-1]
    if not _postgis_ok(version):
        _apt_install([f"postgresql-{version}-postgis-3"])
        if not _postgis_ok(version):
            raise ClusterError(f"PostGIS for PostgreSQL {version} is missing: install postgresql-{version}-postgis-3")
    return PG_LIB / str(version) / "bin"


def _owner_can_reach(path: Path) -> bool:
    if not _is_root():
        return True
    proc = subprocess.run(["runuser", "-u", OWNER, "--", "test", "-x", str(path)], capture_output=True, timeout=30)
    return proc.returncode == 0


def layout(settings: Settings) -> Layout:
    root = settings.var_dir / "pg"
    # Paths handed to the server must be reachable by its owner: follow the link, if any.
    if root.is_symlink():
        root = root.resolve()
    run = root / "run"
    # Unix socket paths are limited to ~107 bytes; a deep checkout falls back to a short folder.
    if len(str(run)) > 80:
        run = Path("/tmp") / f"gridmap-{hashlib.sha1(str(root).encode()).hexdigest()[:10]}"
    return Layout(root=root, data=root / "data", run=run, log=root / "server.log", password_file=root / "password")


def _prepare_root(lay: Layout) -> None:
    """Create var/pg so that the owner can use it (a link elsewhere when the checkout is not traversable)."""
    if lay.root.exists():
        return
    lay.root.parent.mkdir(parents=True, exist_ok=True)
    if _is_root():
        if not _owner_can_reach(lay.root.parent):
            target = Path("/var/lib/gridmap") / hashlib.sha1(str(lay.root).encode()).hexdigest()[:12]
            target.mkdir(parents=True, exist_ok=True)
            lay.root.symlink_to(target, target_is_directory=True)
        else:
            lay.root.mkdir()
        owner = pwd.getpwnam(OWNER)
        real = lay.root.resolve()
        os.chown(real, owner.pw_uid, owner.pw_gid)
    else:
        lay.root.mkdir()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _initdb(bindir: Path, lay: Layout, settings: Settings) -> None:
    password = secrets.token_urlsafe(18)
    pwfile = lay.root / ".initpw"
    pwfile.write_text(password + "\n")
    if _is_root():
        owner = pwd.getpwnam(OWNER)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    pwfile.chmod(0o600)
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(lay.data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ],
            timeout=300,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    lay.password_file.write_text(password + "\n")
    lay.password_file.chmod(0o600)
    # Sized for a 2-core, 24 GB machine; durability stays on (synchronous_commit, fsync).
    conf = f"""
# gridmap local cluster
port = {settings.pg_port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{lay.run}'
unix_socket_permissions = 0770
shared_buffers = 1GB
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 8GB
checkpoint_timeout = 15min
wal_level = minimal
max_wal_senders = 0
max_connections = 200
jit = off
random_page_cost = 1.1
"""
    with (lay.data / "postgresql.conf").open("a") as fh:
        fh.write(conf)


def _server_running(bindir: Path, lay: Layout) -> bool:
    proc = _run([str(bindir / "pg_ctl"), "-D", str(lay.data), "status"], check=False)
    return proc.returncode == 0


def _ensure_run_dir(lay: Layout) -> None:
    lay.run.mkdir(parents=True, exist_ok=True)
    if _is_root():
        owner = pwd.getpwnam(OWNER)
        os.chown(lay.run, owner.pw_uid, owner.pw_gid)


def _configured_port(lay: Layout) -> int | None:
    conf = (lay.data / "postgresql.conf").read_text()
    ports = re.findall(r"^port\s*=\s*(\d+)", conf, flags=re.M)
    return int(ports[-1]) if ports else None


def start(settings: Settings) -> str:
    """Create (once) and start the cluster; return its SQLAlchemy URL. Safe to call when already running."""
    bindir = ensure_installed()
    _prepare_root(layout(settings))
    lay = layout(settings)
    if not (lay.data / "PG_VERSION").exists():
        _initdb(bindir, lay, settings)
    if _configured_port(lay) != settings.pg_port:
        with (lay.data / "postgresql.conf").open("a") as fh:
            fh.write(f"port = {settings.pg_port}\n")
    _ensure_run_dir(lay)
    if not _server_running(bindir, lay):
        pidfile = lay.data / "postmaster.pid"
        if pidfile.exists():
            # pg_ctl says no server runs from this folder: the pid file is left over from a crash.
            pidfile.unlink()
        if not _port_free(settings.pg_port):
            raise ClusterError(
                f"port {settings.pg_port} on 127.0.0.1 is in use by another program; "
                f"choose a free one with GRIDMAP_PG_PORT=<port>"
            )
        proc = _run(
            [str(bindir / "pg_ctl"), "-D", str(lay.data), "-l", str(lay.log), "-w", "-t", "60", "start"], check=False
        )
        if proc.returncode != 0:
            log_tail = lay.log.read_text(errors="replace").strip().splitlines()[-3:] if lay.log.exists() else []
            raise ClusterError(f"the local PostgreSQL did not start: {' | '.join(log_tail) or proc.stderr.strip()}")
    _wait_ready(bindir, lay, settings)
    return url(settings)


def _wait_ready(bindir: Path, lay: Layout, settings: Settings) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc = _run(
            [str(bindir / "pg_isready"), "-h", str(lay.run), "-p", str(settings.pg_port)], owner=False, check=False
        )
        if proc.returncode == 0:
            return
        time.sleep(0.2)
    raise ClusterError(f"the local PostgreSQL does not accept connections; see {lay.log}")


def stop(settings: Settings) -> bool:
    """Stop this checkout's server (found by its data folder). Returns False when it was not running."""
    lay = layout(settings)
    versions = _versions()
    if not versions or not (lay.data / "PG_VERSION").exists():
        return False
    bindir = PG_LIB / str(versions[-1]) / "bin"
    if not _server_running(bindir, lay):
        return False
    _run([str(bindir / "pg_ctl"), "-D", str(lay.data), "-m", "fast", "-w", "stop"])
    return True


def status(settings: Settings) -> str:
    lay = layout(settings)
    if not (lay.data / "PG_VERSION").exists():
        return f"no local cluster yet (would be created in {lay.data})"
    versions = _versions()
    if not versions:
        return "PostgreSQL is not installed"
    bindir = PG_LIB / str(versions[-1]) / "bin"
    state = "running" if _server_running(bindir, lay) else "stopped"
    return f"{state}: data {lay.data}, socket {lay.run}, port {settings.pg_port}"


def url(settings: Settings, database: str | None = None) -> str:
    lay = layout(settings)
    db = database or settings.pg_database
    return f"postgresql+psycopg://postgres@/{db}?host={lay.run}&port={settings.pg_port}"


def tcp_url(settings: Settings, database: str | None = None) -> str:
    """The password-protected TCP URL, for clients that cannot use a Unix socket."""
    lay = layout(settings)
    password = lay.password_file.read_text().strip()
    db = database or settings.pg_database
    return f"postgresql://postgres:{password}@127.0.0.1:{settings.pg_port}/{db}"
